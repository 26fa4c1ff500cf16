"""Property-based fuzzing of the `/v2` routes against the protocol's own OpenAPI document.

`spec/open_inference_rest.yaml` is kserve/open-inference-protocol's `open_inference_rest.yaml`,
vendored unchanged with its licence (Apache-2.0, `spec/LICENSE`). Schemathesis generates requests
from it, valid and invalid, sends them to the app in-process, and checks every answer: never a
5xx, a documented status, and a body that validates against the document's schemas.

Four adjustments are made in memory, each because the document leaves something to the server:
- its paths are templates with a `$` (`/v2/models/${MODEL_NAME}/...`) and `/v2/` for the server
  metadata; they are rewritten to the paths as clients call them (`/v2/models/{MODEL_NAME}`, `/v2`);
- MODEL_NAME and MODEL_VERSION are narrowed to a served model and its version, so that valid
  requests reach a model instead of all being 404s (invalid ones still get any string);
- the error statuses the specification allows ("typically 400") and this server uses (404 unknown
  model or version, 413 over a limit, 503 not ready) are documented on every operation, with the
  document's own error body;
- schema-valid random tensors are not images of digits, so "valid data is accepted" is not checked
  (as in tests/service/api/test_schema_fuzz.py); test_v2_errors pins what each invalid tensor gets.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, Phase, settings
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import positive_data_acceptance

from service.server.app import create_app
from tests.service.conftest import REPO, STORE_ENV, make_settings

from .conftest import MODEL

SPEC = Path(__file__).parent / "spec" / "open_inference_rest.yaml"
EXAMPLES = int(os.environ.get("DIGITS_FUZZ_EXAMPLES", "60"))
ERROR_STATUSES = {"400": "Bad Request", "404": "Not Found", "413": "Content Too Large", "503": "Service Unavailable"}


def served_document(raw: dict[str, Any]) -> dict[str, Any]:
    """The vendored document with the adjustments of the module docstring."""
    document = copy.deepcopy(raw)
    paths = {}
    for template, item in document["paths"].items():
        path = template.replace("${", "{").rstrip("/") or "/"
        for parameter in item.get("parameters", []):
            if parameter["name"] == "MODEL_NAME":
                parameter["schema"] = {"type": "string", "enum": [MODEL]}
            elif parameter["name"] == "MODEL_VERSION":
                parameter["schema"] = {"type": "string", "enum": ["1"]}
        for key, operation in item.items():
            if key == "parameters":
                continue
            for status, description in ERROR_STATUSES.items():
                operation["responses"].setdefault(status, {
                    "description": description,
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/inference_error_response"}}},
                })
        paths[path] = item
    document["paths"] = paths
    return document


_store = Path(os.environ.get(STORE_ENV) or REPO / "model_store")
app = create_app(make_settings(_store, warmup_runs=1))
CONFIG = SchemathesisConfig.from_str("""
[checks.negative_data_rejection]
expected-statuses = ["400", "404", "405", "413", "414", "415", "422"]
""")
schema = schemathesis.openapi.from_dict(served_document(yaml.safe_load(SPEC.read_text())), config=CONFIG)
schema.app = app
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], max_examples=EXAMPLES,
                                deterministic=True)


@pytest.fixture(scope="module", autouse=True)
def _stop_the_app() -> Iterator[None]:
    yield
    schemathesis.python.asgi.shutdown_lifespans()


def test_the_document_covers_the_routes() -> None:
    paths = set(served_document(yaml.safe_load(SPEC.read_text()))["paths"])
    assert paths == {"/v2", "/v2/health/live", "/v2/health/ready", "/v2/models/{MODEL_NAME}/versions/{MODEL_VERSION}",
                     "/v2/models/{MODEL_NAME}/versions/{MODEL_VERSION}/ready",
                     "/v2/models/{MODEL_NAME}/versions/{MODEL_VERSION}/infer"}


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
def test_every_v2_operation_answers_as_the_protocol_documents(case: schemathesis.Case) -> None:
    case.call_and_validate(excluded_checks=[positive_data_acceptance])
