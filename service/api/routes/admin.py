"""POST /admin/reload: reload the model store without a restart.

These routes exist only when `DIGITS_ADMIN_TOKEN` is set (otherwise they are 404, like any unknown
path, and absent from the OpenAPI schema). Every call needs `Authorization: Bearer <token>`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from service.api.dependencies import ReloaderDep, SettingsDep, check_bearer_token
from service.api.error_handlers import error_responses
from service.errors import NotAuthenticated, NotAuthorized, ReloadFailed
from service.schemas import ReloadReport

# auto_error=False: a missing or non-Bearer header reaches `require_admin`, which answers with the
# service's own error body instead of FastAPI's.
_bearer = HTTPBearer(auto_error=False, description="The value of DIGITS_ADMIN_TOKEN.")


async def require_admin(
    settings: SettingsDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> None:
    """401 without a bearer token, 403 with a wrong one (compared in constant time)."""
    expected = settings.admin_token
    if expected is None:  # the router is only mounted with a token; this guards a wrong mount
        raise NotAuthorized("admin endpoints are disabled")
    presented = credentials.credentials if credentials is not None else None
    check_bearer_token(presented, expected, needs="this endpoint needs", kind="admin token")


router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(require_admin)])


@router.post(
    "/reload",
    response_model=ReloadReport,
    summary="Reload the model store",
    responses=error_responses(NotAuthenticated, NotAuthorized, ReloadFailed),
)
async def reload_store(reloader: ReloaderDep) -> ReloadReport:
    """Load the newest version of every model and swap them in; a model whose new version fails keeps serving the old one."""
    return await reloader.reload("admin")
