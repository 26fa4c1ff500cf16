"""The contract between training and serving, with no framework in it (numpy and pydantic only).

- `inputs`: what a model takes and returns (names, shapes, value ranges) and how pixels become input.
- `card`: the model card that training writes beside each ONNX file and the service validates.
- `store`: the layout of the model store, its atomic publishing, and the one query and ranking
  rule ("the latest version of each model", "the best model") that every reader uses.
- `records`: experiment records kept beside the models (replicate runs, robustness curves).
- `calibration`, `statistics`: the arithmetic both sides compute figures with (temperature
  scaling and ECE; McNemar, Wilson intervals, seed spread).

Training imports this package and TensorFlow; the service imports it and ONNX Runtime; neither
imports the other, so the serving image never holds TensorFlow and training never needs FastAPI.
"""
