"""Renderer B: an independent evaluation set of realistic handwritten-digit uploads.

Phone photos of a page with one handwritten digit, canvas drawings, flat scans and a "no digit" family,
rendered deterministically from test-split digits (MNIST, the UCI 8x8 digits, handwriting fonts), and an
evaluator that sends them to the service's ``/predict`` as a black box. See ``bench/renderer_b/README.md``.
"""
