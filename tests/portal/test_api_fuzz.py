"""Schemathesis against the published OpenAPI document: a few hundred generated requests.

Every response must be documented (status, content type, body schema), no request may cause a
server error, invalid input must be refused with 4xx. Each operation gets valid (positive) and
invalid (negative) requests, a bounded number of each, derandomised; the test has a hard time
limit. (Schemathesis' own pytest loader ``from_fixture`` reads a private pytest attribute that
pytest 9 removed, so the operations are driven through their Hypothesis strategies.)
"""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is not installed")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis.generation.modes import GenerationMode  # noqa: E402
from schemathesis.specs.openapi.checks import positive_data_acceptance  # noqa: E402

from enclave.portal.hubconfig import ACCESS_SCOPE  # noqa: E402
from enclave.portal.identity import HubUser  # noqa: E402
from tests.portal.factories import PREFIX, Portal  # noqa: E402

TOKEN = "fuzzing-token-of-the-ethics-committee"
HEADERS = {"Authorization": f"Bearer {TOKEN}"}
EXAMPLES = 30  # per operation and mode: 5 operations x 2 modes x 30 = up to 300 requests


def valid_requests_are_accepted(ctx: object, response: object, case: object) -> None:
    """Schemathesis' positive-data check, minus the one rule JSON Schema cannot state: a date
    range must not end before it starts (a clear 422 on ``date_to``, as in the pages)."""
    if getattr(case, "meta", None) is None or response.status_code != 422:  # type: ignore[attr-defined]
        return
    if not case.meta.generation.mode.is_positive:  # type: ignore[attr-defined]
        return
    fields = response.json()["error"]["fields"]  # type: ignore[attr-defined]
    assert fields and all(f == {"field": "date_to", "message": "error.date_order"}
                          for f in fields), f"a schema-valid request was refused: {fields}"


@pytest.mark.timeout(150)
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_the_api_conforms_to_its_published_schema(shared_portal: Portal,
                                                   mode: GenerationMode) -> None:
    shared_portal.hub.users[TOKEN] = HubUser("gaelle", "user", frozenset({ACCESS_SCOPE}))
    schema = schemathesis.openapi.from_asgi(PREFIX + "api/v1/openapi.json", shared_portal.app,
                                            headers=HEADERS)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 5
    calls = 0
    for operation in operations:
        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck), print_blob=False)
        def run(case: object) -> None:
            nonlocal calls
            response = case.call_and_validate(  # type: ignore[attr-defined]
                headers=HEADERS, excluded_checks=[positive_data_acceptance],
                additional_checks=[valid_requests_are_accepted])
            calls += 1
            assert response.status_code < 500

        run()
    assert calls >= 5 * 5, calls  # some operations have few distinct inputs
    print(f"{mode.value}: {calls} generated requests")
