"""Digit-classifier serving: a FastAPI service over an ONNX model store.

The contract it shares with training (input specification, model card, store layout, experiment
records) is the separate package `digit_contract`, which imports neither TensorFlow nor FastAPI.
"""

import os

# ONNX Runtime's own telemetry (1.31 on Linux) writes a device id and an event database under
# ~/.cache/Microsoft at its first session and sends them to Microsoft; its opt-out is read once, when
# the runtime starts, so it is set here, before any module of the service imports onnxruntime. Set
# ORT_DISABLE_TELEMETRY=0 in the environment to keep it on.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
