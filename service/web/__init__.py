"""The web page the service serves at `/`: static HTML, CSS and JavaScript, no build step.

`static/` holds the page (`index.html`, `app.css`, `js/*.js` as ES modules), the sprite of
misclassified test digits (`mistakes.png`, `mistakes.json`, made by `scripts/make_web_mistakes.py`),
and under `vendor/` the npm bundles of Swagger UI and ReDoc for `/docs` and `/redoc`, with their
licences. Everything loads from the service's own origin, under its content security policy.
"""

from __future__ import annotations

from pathlib import Path

STATIC_DIR = Path(__file__).parent / "static"

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
"""Only the service's own origin. `data:`/`blob:` images are the page's previews of the user's own
drawing and the prepared 28x28 image the API returns as base64."""
