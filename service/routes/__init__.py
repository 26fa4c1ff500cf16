"""The HTTP routes, one router per resource, gathered into `api_router`."""

from __future__ import annotations

from fastapi import APIRouter

from service.routes import health, metrics, models, predict

api_router = APIRouter()
api_router.include_router(predict.router)
api_router.include_router(models.router)
api_router.include_router(metrics.router)
api_router.include_router(health.router)
