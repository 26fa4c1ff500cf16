"""Digit-classifier serving: a FastAPI service over an ONNX model store.

The modules `digit_input`, `card` and `model_store` are the contract between training and
serving. They import neither TensorFlow nor FastAPI, so training can use them and the serving
image never needs TensorFlow.
"""
