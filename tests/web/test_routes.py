"""The page's routes and files without a browser: what is served, under which policy, and that the
HTML leaves nothing inline for the content security policy to block."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from digit_contract.card import ModelCard
from digit_contract.store import latest_version, list_models, version_dir
from service.server.app import create_app
from service.web import CONTENT_SECURITY_POLICY, STATIC_DIR
from tests.service.conftest import REPO, make_settings


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(REPO / "model_store", warmup_runs=1))) as started:
        yield started


class Markup(HTMLParser):
    """What a page's HTML asks the browser to load or run."""

    def __init__(self) -> None:
        super().__init__()
        self.sources: list[str] = []
        self.inline_scripts = 0
        self.inline_styles: list[str] = []  # style attributes and <style> elements
        self.handlers: list[str] = []  # on* attributes
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for name in values:
            if name.startswith("on"):
                self.handlers.append(f"<{tag} {name}>")
        if "style" in values:
            self.inline_styles.append(f"<{tag} style>")
        if tag == "style":
            self.inline_styles.append("<style>")
        if tag == "script":
            self._in_script = "src" not in values
        for name in ("src", "href"):
            if values.get(name) and (tag != "a"):
                self.sources.append(values[name] or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_scripts += 1


def parse(html: str) -> Markup:
    markup = Markup()
    markup.feed(html)
    return markup


@pytest.mark.parametrize("path", ["/", "/docs", "/redoc"])
def test_pages_load_only_same_origin_files_that_exist_and_run_nothing_inline(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    markup = parse(response.text)
    assert markup.inline_scripts == 0
    assert markup.handlers == []
    assert markup.inline_styles == []
    assert markup.sources, "the page loads its scripts and styles from files"
    for source in markup.sources:
        assert source.startswith("/static/"), f"{path} loads {source} from outside the service's static files"
        assert client.get(source).status_code == 200, f"{path} refers to {source}, which is not served"


def test_the_page_is_under_the_services_policy(client: TestClient) -> None:
    response = client.get("/")
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "'unsafe-inline'" not in CONTENT_SECURITY_POLICY
    assert response.headers["x-frame-options"] == "DENY"
    for asset in ("/static/app.css", "/static/js/main.js", "/static/mistakes.png"):
        assert client.get(asset).headers["content-security-policy"] == CONTENT_SECURITY_POLICY


def test_redoc_alone_may_apply_inline_styles(client: TestClient) -> None:
    # ReDoc's CSS-in-JS writes <style> elements; only its page relaxes style-src, nothing else.
    policy = client.get("/redoc").headers["content-security-policy"]
    assert policy == CONTENT_SECURITY_POLICY.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")
    assert client.get("/docs").headers["content-security-policy"] == CONTENT_SECURITY_POLICY


def test_docs_pages_point_at_the_schema(client: TestClient) -> None:
    for path in ("/docs", "/redoc"):
        assert 'data-openapi-url="/openapi.json"' in client.get(path).text
    assert client.get("/openapi.json").status_code == 200


def test_page_routes_stay_out_of_the_api_schema(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert not {"/", "/docs", "/redoc"} & set(paths)
    assert not any(p.startswith("/static") for p in paths)


def test_static_files_do_not_reach_outside_their_folder(client: TestClient) -> None:
    for attempt in ("/static/../app.py", "/static/%2e%2e/routes/web.py", "/static/..%2fweb%2f__init__.py"):
        response = client.get(attempt)
        assert response.status_code == 404, attempt
    assert client.get("/static/nothing-here.js").status_code == 404


def test_the_page_scripts_load_nothing_from_elsewhere() -> None:
    # No absolute URL in the page's own code: every fetch and asset is same-origin. The SVG
    # namespace is the one absolute address a script needs (it is a name, never fetched).
    for script in (STATIC_DIR / "js").glob("*.js"):
        urls = set(re.findall(r"https?://[^\s\"'`)]+", script.read_text()))
        assert urls <= {"http://www.w3.org/2000/svg"}, f"{script.name}: {urls}"


def vendored_hashes() -> dict[str, str]:
    """`file -> sha256` from the table in service/web/static/vendor/README.md (the last hash of a row)."""
    table = (STATIC_DIR / "vendor" / "README.md").read_text()
    rows = re.findall(r"^\| `([^`]+)` \|.*`([0-9a-f]{64})` \|$", table, flags=re.MULTILINE)
    return dict(rows)


def test_vendored_files_are_the_ones_the_readme_records() -> None:
    hashes = vendored_hashes()
    assert set(hashes) == {"swagger-ui/swagger-ui-bundle.js", "swagger-ui/swagger-ui.css", "redoc/redoc.standalone.js"}
    for name, expected in hashes.items():
        digest = hashlib.sha256((STATIC_DIR / "vendor" / name).read_bytes()).hexdigest()
        assert digest == expected, f"{name} changed without its row in vendor/README.md"
    for licence in ("swagger-ui/LICENSE", "swagger-ui/NOTICE", "redoc/LICENSE"):
        assert (STATIC_DIR / "vendor" / licence).stat().st_size > 0


def test_the_sprite_holds_every_misclassified_test_digit_of_the_store() -> None:
    meta = json.loads((STATIC_DIR / "mistakes.json").read_text())
    store = REPO / "model_store"
    wanted: set[int] = set()
    for name in list_models(store):
        version = latest_version(store, name)
        assert version is not None
        card = ModelCard.read(version_dir(store, name, version) / "card.json")
        if card.dataset.name == "mnist":  # the sprite is of MNIST test digits; other test sets get labelled tiles
            wanted.update(m.index for m in card.misclassified)
    assert wanted <= set(meta["indices"]), "run scripts/make_web_mistakes.py after adding a model"
    with Image.open(STATIC_DIR / "mistakes.png") as sprite:
        rows = -(-len(meta["indices"]) // meta["columns"])
        assert sprite.size == (meta["columns"] * meta["tile"], rows * meta["tile"])
    assert Path(STATIC_DIR / "mistakes.png").stat().st_size < 100_000
