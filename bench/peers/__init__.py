"""Baseline servers the service is measured against, each as small as its role allows.

- `ceiling`: the HTTP ceiling of the stack, an upload read and a constant answer (and a bodiless GET);
- `naive_keras`: FastAPI calling the Keras model per request, as the seeds' authors would write it;
- `naive_ort`: FastAPI + ONNX Runtime with a plain resize, no validation, no metrics;
- `bento_digits`: BentoML serving the same ONNX files (run from its own venv, see bench/README.md).

This module imports nothing but the standard library: the BentoML venv imports it too.
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_MODEL = "cnn_noise"


def store_path() -> Path:
    """The model store the peers serve: `BENCH_STORE`, else ./model_store."""
    return Path(os.environ.get("BENCH_STORE", "model_store"))


def model_paths(store: Path) -> dict[str, Path]:
    """`name -> <store>/<name>/<latest version>/model.onnx` for every model with a published version."""
    found = {}
    for model_dir in sorted(p for p in store.iterdir() if p.is_dir()):
        versions = sorted(int(v.name) for v in model_dir.iterdir() if v.name.isdigit() and (v / "model.onnx").is_file())
        if versions:
            found[model_dir.name] = model_dir / str(versions[-1]) / "model.onnx"
    if not found:
        raise FileNotFoundError(f"no <name>/<version>/model.onnx under {store}")
    return found
