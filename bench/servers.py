"""The servers under test: how to start each one, wait until it is ready, check it answers, stop it.

Every target runs as a subprocess of its own session (so it and all its workers stop together)
on a free loopback port, with the same number of workers, its output going to a log file:

- `ceiling`: bench/peers/ceiling.py on uvicorn (access log off: it is the ceiling);
- `decode_ceiling`: bench/peers/decode_ceiling.py, the same plus the fastest correct decode (access log off);
- `naive_ort`, `naive_keras`: bench/peers/naive_*.py on uvicorn with uvicorn's defaults, as
  their authors would start them (`uvicorn app:app --workers N`);
- `bentoml`: bench/peers/bento_digits.py under `bentoml serve`, in .venv-bench-bentoml;
- `service`: the service itself, `python -m service --host H --port P`, configured by DIGITS_*.

All FastAPI targets use the same interpreter (the project venv: same fastapi, starlette, uvicorn,
uvloop and httptools as requirements/serve.lock); the BentoML venv has the same uvicorn[standard].
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.payloads import Payload
from bench.toolkit import HOST, REPO, ServerFailed, ServerProcess, free_port, http_request

BENTO_VENV = REPO / ".venv-bench-bentoml"
BENTO_REQUIREMENTS = Path(__file__).resolve().parent / "requirements-bentoml.txt"

LABELS = {
    "ceiling": "upload ceiling (FastAPI, reads the file, constant answer)",
    "get_constant": "bodiless GET, constant answer (reference)",
    "decode_ceiling": "decode ceiling (FastAPI, reads and decodes the file, constant answer)",
    "naive_keras": "naive FastAPI + Keras `predict`",
    "naive_ort": "naive FastAPI + ONNX Runtime",
    "bentoml": "BentoML + ONNX Runtime",
    "service": "our service",
}


@dataclass(frozen=True)
class ServerSpec:
    key: str
    workers: int
    argv: list[str]
    """Command line; `{host}` and `{port}` are filled in at start."""
    ready_path: str
    env: dict[str, str] = field(default_factory=dict)
    predicts: bool = True
    """Whether answers carry a real `digit` (the ceiling's is a constant)."""

    @property
    def label(self) -> str:
        return LABELS.get(self.key, self.key)


def _uvicorn(app: str, workers: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "uvicorn", app, "--host", "{host}", "--port", "{port}", "--workers", str(workers),
            *extra]


def server_spec(key: str, workers: int, store: Path, *, python: str | None = None) -> ServerSpec:
    """The spec of one target by key: ceiling, decode_ceiling, naive_ort, naive_keras, bentoml or service."""
    store_env = {"BENCH_STORE": str(store.resolve())}
    if key in ("ceiling", "decode_ceiling"):
        return ServerSpec(key, workers, _uvicorn(f"bench.peers.{key}:app", workers, "--no-access-log"),
                          "/health/ready", predicts=False)
    if key == "naive_ort":
        return ServerSpec(key, workers, _uvicorn("bench.peers.naive_ort:app", workers), "/health/ready", store_env)
    if key == "naive_keras":
        return ServerSpec(key, workers, _uvicorn("bench.peers.naive_keras:app", workers), "/health/ready",
                          {**store_env, "TF_CPP_MIN_LOG_LEVEL": "2"})
    if key == "bentoml":
        return ServerSpec(
            key, workers,
            [str(BENTO_VENV / "bin" / "bentoml"), "serve", "bench.peers.bento_digits:Digits",
             "--host", "{host}", "--port", "{port}"],
            "/readyz",
            # No usage tracking (there is no network anyway), and BentoML's home kept out of ~.
            {**store_env, "BENCH_WORKERS": str(workers), "BENTOML_DO_NOT_TRACK": "True", "DO_NOT_TRACK": "1",
             "BENTOML_HOME": str(BENTO_VENV / "bentoml-home")},
        )
    if key == "service":
        return ServerSpec(
            key, workers,
            [python or sys.executable, "-m", "service", "--host", "{host}", "--port", "{port}"],
            "/health/ready",
            {"DIGITS_MODEL_STORE": str(store.resolve()), "DIGITS_WORKERS": str(workers)},
        )
    raise ValueError(f"unknown target {key!r}")


class RunningServer(ServerProcess):
    """A started target: `with RunningServer(spec, log_dir) as server:` starts it on a free port and
    waits until ready (`ready_s`); its output goes to `<log_dir>/<key>-w<workers>-<port>.log`."""

    def __init__(self, spec: ServerSpec, log_dir: Path, *, ready_timeout_s: float = 180.0) -> None:
        port = free_port()
        super().__init__(
            [arg.format(host=HOST, port=port) for arg in spec.argv], port=port, env={**os.environ, **spec.env},
            ready_path=spec.ready_path, log_path=log_dir / f"{spec.key}-w{spec.workers}-{port}.log",
            ready_timeout_s=ready_timeout_s, name=spec.key,
        )
        self.spec = spec

    def check(self, payload: Payload, *, samples: int = 8, allow_refusals: bool = False) -> dict[str, Any]:
        """Send a few of the payload's bodies once; the answers must be 200 (and, for a model, digits).

        Returns how many images came back with the right digit: a target answering garbage at high
        speed would otherwise look like a fast one. With `allow_refusals`, answers other than 200
        (a service saying "no ink" on a hard photo) are counted in `refused` instead of failing, as
        long as one body was answered: how well a pipeline reads uploads is not what a load run
        measures, but the report shows it.
        """
        correct = total = 0
        refused: dict[str, int] = {}
        checked = min(samples, max(1, len(payload.bodies)))
        for index in range(checked):
            body = payload.bodies[index] if payload.bodies else None
            status, raw = http_request(self.base_url + payload.path, method=payload.method, body=body,
                                       content_type=payload.content_type, timeout=60.0)
            if status != 200 and allow_refusals:
                refused[str(status)] = refused.get(str(status), 0) + 1
                continue
            if status != 200:
                raise ServerFailed(f"{self.spec.key}: {payload.method} {payload.path} answered {status}: {raw[:300]!r}")
            if not self.spec.predicts or not payload.labels:
                continue
            answer = json.loads(raw)
            answers = answer if isinstance(answer, list) else [answer]
            digits = [item["digit"] for item in answers]
            if len(digits) != len(payload.labels[index]):
                raise ServerFailed(f"{self.spec.key}: {len(digits)} answers for {len(payload.labels[index])} images")
            correct += sum(d == label for d, label in zip(digits, payload.labels[index], strict=True))
            total += len(digits)
        if sum(refused.values()) == checked:
            raise ServerFailed(f"{self.spec.key}: every body was refused ({refused}): {raw[:300]!r}")
        if allow_refusals:
            return {"checked_images": total, "correct": correct, "refused": refused}
        return {"checked_images": total, "correct": correct}


def ensure_bento_venv() -> str | None:
    """Create .venv-bench-bentoml from bench/requirements-bentoml.txt if missing; None when usable."""
    bentoml = BENTO_VENV / "bin" / "bentoml"
    marker = BENTO_VENV / ".installed"
    if bentoml.exists() and marker.exists() and marker.read_text() == BENTO_REQUIREMENTS.read_text():
        return None
    steps = [
        [sys.executable, "-m", "venv", str(BENTO_VENV)],
        [str(BENTO_VENV / "bin" / "pip"), "install", "-q", "-r", str(BENTO_REQUIREMENTS)],
    ]
    for argv in steps:
        completed = subprocess.run(argv, capture_output=True, text=True, timeout=1800, check=False)  # noqa: S603
        if completed.returncode != 0:
            return f"{' '.join(argv[:3])} failed: {(completed.stderr or completed.stdout).strip()[-400:]}"
    marker.write_text(BENTO_REQUIREMENTS.read_text())
    return None
