"""GET /metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response

from service.routes.dependencies import MetricsDep

router = APIRouter(tags=["metrics"])


@router.get(
    "/metrics",
    response_class=Response,
    summary="Prometheus metrics",
    responses={200: {"description": "Prometheus text exposition format.",
                     "content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def metrics(metrics: MetricsDep) -> Response:
    """Prometheus metrics: requests, latencies, predictions per class, confidence, model readiness."""
    content, content_type = metrics.render()
    return Response(content, media_type=content_type)
