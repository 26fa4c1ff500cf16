"""One error body everywhere: unknown routes, wrong methods, unexpected failures; and the OpenAPI schema."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient


def test_an_unknown_route_is_404_with_the_error_body(client: TestClient) -> None:
    response = client.get("/no/such/thing")
    assert (response.status_code, response.json()) == (404, {"error": "no such endpoint"})


def test_a_wrong_method_is_405_with_the_error_body(client: TestClient) -> None:
    response = client.delete("/predict")
    assert (response.status_code, response.json()) == (405, {"error": "method DELETE not allowed here"})
    assert response.headers["allow"] == "POST"


def test_an_unexpected_failure_is_500_without_details(app_factory: Callable[..., FastAPI],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    app = app_factory()
    with TestClient(app, raise_server_exceptions=False) as client:
        def explode() -> None:
            raise RuntimeError("/secret/path/model.onnx exploded")

        monkeypatch.setattr(app.state.dataplane, "list_models", explode)
        response = client.get("/models")
    assert (response.status_code, response.json()) == (500, {"error": "internal server error"})
    assert "secret" not in response.text


def test_cors_is_off_by_default(client: TestClient) -> None:
    response = client.get("/health/live", headers={"origin": "https://example.org"})
    assert "access-control-allow-origin" not in response.headers


def test_cors_origins_can_be_allowed(app_factory: Callable[..., FastAPI]) -> None:
    with TestClient(app_factory(cors_origins=["https://example.org"])) as client:
        preflight = client.options("/predict", headers={"origin": "https://example.org",
                                                        "access-control-request-method": "POST"})
        other = client.get("/health/live", headers={"origin": "https://elsewhere.example"})
    assert preflight.headers["access-control-allow-origin"] == "https://example.org"
    assert "access-control-allow-origin" not in other.headers


def test_openapi_documents_every_endpoint_and_its_errors(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    # The Open Inference Protocol's /v2 routes are documented and checked in tests/oip.
    operations = {(path, method): op for path, item in schema["paths"].items() for method, op in item.items()
                  if not path.startswith("/v2")}
    assert set(operations) == {
        ("/predict", "post"), ("/models", "get"), ("/models/compare", "get"), ("/models/compare", "post"),
        ("/models/{name}", "get"), ("/metrics", "get"), ("/health/live", "get"), ("/health/live", "head"),
        ("/health/ready", "get"), ("/read", "post"), ("/version", "get"),
    }
    for op in operations.values():
        assert op["summary"] and op["description"]
        assert op["responses"]["default"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorBody"}
        assert "HTTPValidationError" not in str(op)
    predict = operations[("/predict", "post")]
    assert set(predict["responses"]) == {"200", "400", "404", "413", "415", "422", "503", "default"}
    assert set(predict["requestBody"]["content"]) >= {"multipart/form-data", "image/*", "application/json"}
    for status in ("400", "404", "413", "415", "422", "503"):
        assert predict["responses"][status]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorBody"}
    assert set(operations[("/models/{name}", "get")]["responses"]) == {"200", "404", "default"}
    assert set(operations[("/health/ready", "get")]["responses"]) == {"200", "503", "default"}
    assert operations[("/metrics", "get")]["responses"]["200"]["content"] == {"text/plain": {"schema": {"type": "string"}}}


@pytest.mark.parametrize(("method", "path", "allow"), [
    ("OPTIONS", "/models/compare", "GET, POST"),  # one path, two routes: both methods are listed
    ("PUT", "/models/cnn", "GET"),
    ("POST", "/health/ready", "GET"),
])
def test_a_405_lists_every_method_of_the_path(client: TestClient, method: str, path: str, allow: str) -> None:
    response = client.request(method, path)
    assert (response.status_code, response.headers["allow"]) == (405, allow)
    assert response.json() == {"error": f"method {method} not allowed here"}
