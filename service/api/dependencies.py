"""FastAPI dependencies: the objects the lifespan put on `app.state`, handed to routes.

They are `async def` on purpose: FastAPI runs a plain `def` dependency in the thread pool, and
that hop costs more than the whole inference of a small digit (measured in bench/README.md).
"""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, Request
from pydantic import SecretStr

from service.errors import NotAuthenticated, NotAuthorized
from service.inference.dataplane import DataPlane
from service.models.reloader import StoreReloader
from service.observability.metrics import ServiceMetrics
from service.settings import Settings


async def get_dataplane(request: Request) -> DataPlane:
    dataplane: DataPlane = request.app.state.dataplane
    return dataplane


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_metrics(request: Request) -> ServiceMetrics:
    metrics: ServiceMetrics = request.app.state.metrics
    return metrics


async def get_reloader(request: Request) -> StoreReloader:
    reloader: StoreReloader = request.app.state.reloader
    return reloader


DataPlaneDep = Annotated[DataPlane, Depends(get_dataplane)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
MetricsDep = Annotated[ServiceMetrics, Depends(get_metrics)]
ReloaderDep = Annotated[StoreReloader, Depends(get_reloader)]


def check_bearer_token(presented: str | None, expected: SecretStr, *, needs: str, kind: str) -> None:
    """401 without a bearer token, 403 with a wrong one (compared in constant time).

    `needs` and `kind` word the answers: "<needs> the header `Authorization: Bearer <<kind>>`",
    "the <kind> is wrong".
    """
    if presented is None:
        raise NotAuthenticated(f"{needs} the header `Authorization: Bearer <{kind}>`")
    if not secrets.compare_digest(presented.encode(), expected.get_secret_value().encode()):
        raise NotAuthorized(f"the {kind} is wrong")
