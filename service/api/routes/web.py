"""GET / (the web page), GET /docs and GET /redoc (API documentation), and the page's files under /static.

FastAPI's own /docs and /redoc pages load Swagger UI and ReDoc from a CDN and start them with an
inline script, so they are blank offline and under the service's content security policy. These
serve the same tools from vendored copies (`service/web/static/vendor/`) and start them from
separate same-origin scripts that read the OpenAPI address from a data attribute.
"""

from __future__ import annotations

from html import escape

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

from service.web import CONTENT_SECURITY_POLICY, STATIC_DIR

router = APIRouter(include_in_schema=False)

REDOC_CONTENT_SECURITY_POLICY = CONTENT_SECURITY_POLICY.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")
"""ReDoc's styled-components writes its CSS into <style> elements at run time (no nonce can be given
to the bundle), which `style-src 'self'` blocks and ReDoc then fails to start. Inline styles only, on
this page only; scripts and every fetch stay same-origin."""

_DOCS_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="icon" href="{static}/favicon.svg" type="image/svg+xml">
{head}
</head>
<body>
<div id="{element}" data-openapi-url="{openapi_url}"></div>
<script src="{static}/vendor/{bundle}"></script>
<script src="{static}/{init}"></script>
</body>
</html>
"""


def _docs_page(request: Request, *, title: str, head: str, element: str, bundle: str, init: str,
               headers: dict[str, str] | None = None) -> HTMLResponse:
    # root_path: behind a proxy that mounts the service under a prefix, links must carry it.
    root = request.scope.get("root_path", "").rstrip("/")
    openapi_url = request.app.openapi_url or "/openapi.json"
    html = _DOCS_PAGE.format(
        title=escape(f"{request.app.title} - {title}"), head=head.format(static=f"{root}/static"), element=element,
        openapi_url=escape(root + openapi_url), static=f"{root}/static", bundle=bundle, init=init,
    )
    return HTMLResponse(html, headers=headers)


@router.get("/")
async def page() -> FileResponse:
    """The web page: draw or upload a digit, see every model's answer, explore the experiments."""
    return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    """Swagger UI, from the vendored swagger-ui-dist bundle."""
    return _docs_page(
        request, title="Swagger UI", element="swagger-ui", bundle="swagger-ui/swagger-ui-bundle.js",
        init="docs-init.js",
        head='<link rel="stylesheet" href="{static}/vendor/swagger-ui/swagger-ui.css">'
             '<link rel="stylesheet" href="{static}/docs.css">',
    )


@router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    """ReDoc, from the vendored redoc standalone bundle."""
    return _docs_page(
        request, title="ReDoc", element="redoc", bundle="redoc/redoc.standalone.js", init="redoc-init.js",
        head='<link rel="stylesheet" href="{static}/docs.css">',
        headers={"Content-Security-Policy": REDOC_CONTENT_SECURITY_POLICY},
    )


def mount_static(app: FastAPI) -> None:
    """Serve the page's files under /static (a mount: routers cannot carry one)."""
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
