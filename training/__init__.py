"""Training of the six seed variants on MNIST, export to ONNX, and the model store's cards.

Run `python -m training --help`. Only `training.data` is importable without TensorFlow.
"""
