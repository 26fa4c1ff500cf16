"""Independent evaluation set: realistic digit uploads rendered procedurally, and an HTTP evaluator.

Written without sight of the service's front end (how it reads images); see README.md.
"""
