"""Naive FastAPI + ONNX Runtime: what a first version with the right runtime looks like.

Pillow opens the upload, converts it to greyscale, resizes it to 28x28, divides by 255 and runs
the session, with ONNX Runtime's default session options. No validation, no preprocessing
beyond the resize, no metrics, no thread pool. It loads every model of `BENCH_STORE` at import.

    BENCH_STORE=model_store python -m uvicorn bench.peers.naive_ort:app --workers 2
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import onnxruntime as ort
from fastapi import FastAPI, File, UploadFile
from PIL import Image

from bench.peers import DEFAULT_MODEL, model_paths, store_path

sessions = {name: ort.InferenceSession(str(path)) for name, path in model_paths(store_path()).items()}

app = FastAPI(title="naive ONNX Runtime")


@app.post("/predict")
async def predict(file: UploadFile = File(...), model: str = DEFAULT_MODEL) -> dict[str, Any]:  # noqa: B008
    image = Image.open(io.BytesIO(await file.read())).convert("L").resize((28, 28))
    x = (np.asarray(image, dtype=np.float32) / 255.0).reshape(1, 28, 28, 1)
    probabilities = sessions[model].run(None, {"image": x})[0][0]
    return {"digit": int(probabilities.argmax()), "confidence": float(probabilities.max()),
            "probabilities": probabilities.tolist()}


@app.get("/health/ready")
async def ready() -> dict[str, str]:
    return {"status": "ready"}
