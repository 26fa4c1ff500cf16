"""The HTTP ceiling: what the server stack alone costs for an upload and for a bodiless GET.

`POST /predict` parses the multipart body and reads every `file` part (as any upload endpoint
must), then answers a constant JSON the size of a real prediction; `GET /constant` answers the
same bytes with no body to read. Nothing is decoded and nothing runs, so no app on the same stack
and worker count can be faster: the service's throughput is reported as a share of these.

    python -m uvicorn bench.peers.ceiling:app --workers 2 --no-access-log
"""

from __future__ import annotations

import json

from fastapi import FastAPI, Request, Response

# A prediction-sized answer (the service's carries model, version, probabilities, image and timings).
CONSTANT = json.dumps({
    "model": "cnn_noise", "version": 1, "digit": 7, "confidence": 0.9999,
    "probabilities": [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.9999, 0.0, 0.0001],
    "providers": ["CPUExecutionProvider"],
    "image": {"filename": "digit.png", "format": "PNG", "width": 28, "height": 28, "mode": "L",
              "method": "passthrough", "inverted": False},
    "timings": {"preprocess_ms": 0.0, "inference_ms": 0.0, "batch_size": 1},
}).encode()

app = FastAPI(title="upload ceiling")


@app.post("/predict")
async def predict(request: Request) -> Response:
    """Read the multipart `file` parts, answer a constant."""
    async with request.form(max_files=1024, max_fields=1024) as form:
        for part in form.getlist("file"):
            if not isinstance(part, str):
                await part.read()
    return Response(CONSTANT, media_type="application/json")


@app.get("/constant")
async def constant() -> Response:
    """The same answer with no body to read."""
    return Response(CONSTANT, media_type="application/json")


@app.get("/health/ready")
async def ready() -> Response:
    return Response(b'{"status":"ready"}', media_type="application/json")
