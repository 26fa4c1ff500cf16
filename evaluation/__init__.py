"""The user-style upload evaluation: MNIST, UCI and font digits rendered as canvases, scans and phone
photos (round 2's renderer), read through the service's own upload path by every model of the store.

Its validation run (`python -m evaluation --split validation --record`) writes
`model_store/uploads-validation.json`, which the service reads at run time to choose the default
model for uploads: a step of the product, not a benchmark, so it lives apart from `bench/`.
"""
