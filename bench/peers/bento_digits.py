"""BentoML serving the same ONNX files, written the way BentoML's docs write a service.

Runs in its own venv (.venv-bench-bentoml, from bench/requirements-bentoml.txt) so BentoML's pins
never touch the project's; `bench.http_suite` creates it when missing. One class, the sessions
opened in `__init__` (all models of `BENCH_STORE`, so its footprint compares with the service's),
a sync API that BentoML runs in its thread pool, and BentoML's own PIL image input (multipart
field `file`). It answers with `BENCH_MODEL` (default cnn_noise) and ignores `?model=`.

    BENCH_STORE=model_store BENCH_WORKERS=2 .venv-bench-bentoml/bin/bentoml serve \\
        bench.peers.bento_digits:Digits --host 127.0.0.1 --port 3000
"""

from __future__ import annotations

import os
from typing import Any

import bentoml
import numpy as np
from PIL.Image import Image

from bench.peers import DEFAULT_MODEL, model_paths, store_path


@bentoml.service(workers=int(os.environ.get("BENCH_WORKERS", "1")), traffic={"timeout": 60})
class Digits:
    def __init__(self) -> None:
        import onnxruntime as ort

        self.sessions = {name: ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
                         for name, path in model_paths(store_path()).items()}
        self.model = os.environ.get("BENCH_MODEL", DEFAULT_MODEL)

    @bentoml.api  # type: ignore[untyped-decorator]
    def predict(self, file: Image) -> dict[str, Any]:
        x = (np.asarray(file.convert("L").resize((28, 28)), dtype=np.float32) / 255.0).reshape(1, 28, 28, 1)
        probabilities = self.sessions[self.model].run(None, {"image": x})[0][0]
        return {"digit": int(probabilities.argmax()), "confidence": float(probabilities.max()),
                "probabilities": probabilities.tolist()}
