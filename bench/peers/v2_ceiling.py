"""The Open Inference Protocol ceiling: reads the whole binary infer request, answers a constant.

`POST /v2/models/{name}/infer` reads the body (as any infer endpoint must), reads the batch size from
the small JSON header in front of the binary data (`Inference-Header-Content-Length`), and answers
a precomputed binary response of the size the service's would have for that batch (the JSON header
and N x 10 float32 probabilities). Nothing is run: the service's images/s are reported as a share
of this, on the same stack (FastAPI, uvicorn, uvloop, httptools) and worker count.

    python -m uvicorn bench.peers.v2_ceiling:app --no-access-log
"""

from __future__ import annotations

import json
from functools import lru_cache

from fastapi import FastAPI, Request, Response

app = FastAPI(title="V2 ceiling")


@lru_cache(maxsize=64)
def constant_answer(batch: int) -> tuple[bytes, str]:
    header = json.dumps({"model_name": "cnn", "model_version": "1", "outputs": [
        {"name": "probabilities", "datatype": "FP32", "shape": [batch, 10],
         "parameters": {"binary_data_size": batch * 40}}]}, separators=(",", ":")).encode()
    return header + bytes(batch * 40), str(len(header))


@app.post("/v2/models/{name}/infer")
async def infer(request: Request, name: str) -> Response:
    body = await request.body()
    length = int(request.headers.get("inference-header-content-length", len(body)))
    batch = int(json.loads(body[:length])["inputs"][0]["shape"][0])
    content, header_length = constant_answer(batch)
    return Response(content, media_type="application/octet-stream",
                    headers={"Inference-Header-Content-Length": header_length})


@app.get("/v2/health/ready")
async def ready() -> Response:
    return Response(b'{"ready":true}', media_type="application/json")
