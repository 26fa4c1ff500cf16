"""The HTTP routes, one router per resource, gathered into `api_router`.

`admin_router` is separate: the app mounts it only when an admin token is configured.
"""

from __future__ import annotations

from fastapi import APIRouter

from service.api.routes import admin, health, metrics, models, predict, read, version

api_router = APIRouter()
api_router.include_router(predict.router)
api_router.include_router(read.router)
api_router.include_router(models.router)
api_router.include_router(metrics.router)
api_router.include_router(health.router)
api_router.include_router(version.router)

admin_router = admin.router
