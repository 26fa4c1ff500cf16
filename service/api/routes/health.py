"""GET /health/live and GET /health/ready."""

from __future__ import annotations

from fastapi import APIRouter, Request

from service.api.dependencies import DataPlaneDep
from service.api.error_handlers import error_responses
from service.errors import NoModelReady
from service.observability.saturation import SaturationMonitor, WorkerSaturated
from service.schemas import Liveness, Readiness

router = APIRouter(prefix="/health", tags=["health"])


# HEAD too: load balancers and `curl -I` probe with it (Starlette sends HEAD's headers without the body).
@router.api_route("/live", methods=["GET", "HEAD"], response_model=Liveness, summary="Liveness")
async def live() -> Liveness:
    """The process answers HTTP (it does not look at the models)."""
    return Liveness(status="alive")


@router.get("/ready", response_model=Readiness, summary="Readiness",
            responses=error_responses(NoModelReady, WorkerSaturated))
async def ready(request: Request, dataplane: DataPlaneDep) -> Readiness:
    """200 `ready` when every model serves, 200 `degraded` when some failed but the default serves, else
    503 (also while the worker's work queue has been full for longer than a probe period)."""
    check_saturation(request)
    return dataplane.readiness()


def check_saturation(request: Request) -> None:
    """Raise `WorkerSaturated` when the app's saturation monitor says so (service.observability.saturation)."""
    monitor: SaturationMonitor | None = getattr(request.app.state, "saturation", None)
    if monitor is not None:
        monitor.check()
