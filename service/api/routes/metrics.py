"""GET /metrics: the Prometheus exposition, optionally behind a bearer token."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from service.api.dependencies import MetricsDep, SettingsDep, check_bearer_token
from service.api.error_handlers import error_responses
from service.errors import NotAuthenticated, NotAuthorized

router = APIRouter(tags=["metrics"])

async def require_metrics_token(settings: SettingsDep, request: Request) -> None:
    """Without `DIGITS_METRICS_TOKEN`, open; with it, 401 without a bearer token and 403 with a wrong one.

    The header is read by hand rather than declared as a security scheme, which would document
    the token as always required.
    """
    expected = settings.metrics_token
    if expected is None:
        return
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    presented = token.strip() if scheme.lower() == "bearer" and token.strip() else None
    check_bearer_token(presented, expected, needs="the metrics need", kind="metrics token")


@router.get(
    "/metrics",
    response_class=Response,
    summary="Prometheus metrics",
    description="Open, unless the service was started with `DIGITS_METRICS_TOKEN`: then send "
    "`Authorization: Bearer <token>`.",
    dependencies=[Depends(require_metrics_token)],
    responses={200: {"description": "Prometheus text exposition format.",
                     "content": {"text/plain": {"schema": {"type": "string"}}}},
               **error_responses(NotAuthenticated, NotAuthorized)},
)
async def metrics(metrics: MetricsDep) -> Response:
    """Prometheus metrics: requests, latencies, predictions per class, confidence, model readiness.

    Rendered in a worker thread (summing the workers' files takes milliseconds) and reused for up to
    a second, so scraping cannot hold up the event loop however often it is asked.
    """
    content, content_type = await run_in_threadpool(metrics.render_cached)
    return Response(content, media_type=content_type)
