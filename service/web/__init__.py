"""The web page the service serves at `/`: static HTML, CSS and JavaScript, no build step.

`static/` holds the page (`index.html`, `app.css`, `js/*.js` as ES modules), the sprite of
misclassified test digits (`mistakes.png`, `mistakes.json`, made by `scripts/make_web_mistakes.py`),
and under `vendor/` the npm bundles of Swagger UI and ReDoc for `/docs` and `/redoc`, with their
licences. Everything loads from the service's own origin, under its content security policy.
"""

from __future__ import annotations

from pathlib import Path

STATIC_DIR = Path(__file__).parent / "static"
