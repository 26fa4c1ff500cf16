"""Property-based fuzzing of the OpenAPI schema with schemathesis: no 5xx, every answer as documented.

Schemathesis reads `/openapi.json` and generates requests for every operation, both valid ones
(positive: as the schema describes them) and invalid ones (negative: wrong types, missing parts,
overlong values), sends them to the app in-process, and checks each answer: never a server error,
a status the schema documents, the documented content type, a body that validates against the
documented schema, and, for negative requests, a 4xx. The admin endpoint is on (with a token the
fuzzer does not know), so its 401/403 answers are checked too.

The examples per operation are bounded so the whole run takes well under a minute on 2 cores;
`DIGITS_FUZZ_EXAMPLES` raises the number for a longer hunt.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import positive_data_acceptance

from service.server.app import create_app
from tests.service.conftest import REPO, STORE_ENV, make_settings

EXAMPLES = int(os.environ.get("DIGITS_FUZZ_EXAMPLES", "100"))


def _test_store() -> Path:
    # The `store` fixture's choice, made at import: schemathesis builds its tests while collecting.
    return Path(os.environ.get(STORE_ENV) or REPO / "model_store")


# Building the app is cheap; its lifespan (loading the models) runs at the first request.
app = create_app(make_settings(_test_store(), warmup_runs=1, admin_token="fuzz-" + "x" * 27))
# An invalid request may be refused with any 4xx the API documents. Schemathesis' default list
# leaves out 413 and 414, this API's answers to too many parts and to overlong queries.
CONFIG = SchemathesisConfig.from_str("""
[checks.negative_data_rejection]
expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "413", "414", "415", "422", "428", "429"]
""")
schema = schemathesis.openapi.from_dict(app.openapi(), config=CONFIG)
schema.app = app  # what `from_asgi` sets: requests go to the app in-process
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], max_examples=EXAMPLES,
                                deterministic=True)


@pytest.fixture(scope="module", autouse=True)
def _stop_the_app(store: Path) -> Iterator[None]:
    # `store` fails the module early, with its message, when the test store is incomplete.
    yield
    schemathesis.python.asgi.shutdown_lifespans()  # the app's lifespan shutdown runs too


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
def test_every_operation_answers_as_documented(case: schemathesis.Case) -> None:
    # `positive_data_acceptance` is left out: `format: binary` cannot say "a decodable image of a
    # digit", so schema-valid random bytes rightly get 415/400/422 (test_hostile_input pins those).
    case.call_and_validate(excluded_checks=[positive_data_acceptance])
