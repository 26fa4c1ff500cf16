"""Naive FastAPI + Keras: the model called per request with `model.predict`, as the seeds would.

The Keras models are rebuilt from the store's ONNX weights (training/onnx_to_keras.py), so the
numbers are those of the very same weights. The endpoint is `async def` and calls `predict`
directly, as most tutorials do; TensorFlow keeps its default threading.

    BENCH_STORE=model_store python -m uvicorn bench.peers.naive_keras:app --workers 2
"""

from __future__ import annotations

import io
import os
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
from fastapi import FastAPI, File, UploadFile
from PIL import Image

from bench.peers import DEFAULT_MODEL, model_paths, store_path
from training.onnx_to_keras import keras_model_from_onnx
from training.variants import VARIANTS_BY_NAME

models = {name: keras_model_from_onnx(VARIANTS_BY_NAME[name], path)
          for name, path in model_paths(store_path()).items() if name in VARIANTS_BY_NAME}

app = FastAPI(title="naive Keras")


@app.post("/predict")
async def predict(file: UploadFile = File(...), model: str = DEFAULT_MODEL) -> dict[str, Any]:  # noqa: B008
    image = Image.open(io.BytesIO(await file.read())).convert("L").resize((28, 28))
    x = (np.asarray(image, dtype=np.float32) / 255.0).reshape(1, 28, 28, 1)
    probabilities = models[model].predict(x, verbose=0)[0]
    return {"digit": int(probabilities.argmax()), "confidence": float(probabilities.max()),
            "probabilities": probabilities.tolist()}


@app.get("/health/ready")
async def ready() -> dict[str, str]:
    return {"status": "ready"}
