"""Digit-classifier serving: a FastAPI service over an ONNX model store.

The contract it shares with training (input specification, model card, store layout, experiment
records) is the separate package `digit_contract`, which imports neither TensorFlow nor FastAPI.
"""
