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
from schemathesis.core.parameters import ParameterLocation  # noqa: E402
from schemathesis.generation.modes import GenerationMode  # noqa: E402
from schemathesis.specs.openapi.checks import positive_data_acceptance  # noqa: E402

from enclave.portal.hubconfig import ACCESS_SCOPE  # noqa: E402
from enclave.portal.identity import HubUser  # noqa: E402
from tests.portal.factories import PREFIX, Portal  # noqa: E402

TOKEN = "fuzzing-token-of-{}"
#: Examples per operation and generation mode: the trail's, with their subtle filters, get
#: more; the access operations (about twenty) fewer, each run as three kinds of person.
EXAMPLES = {"list_audit_events": 30, "verify_audit_chain": 10}
DEFAULT_EXAMPLES = 8
#: The ethics committee, a researcher and DEPP staff each reach different workflow checks.
CALLERS = ("gaelle", "alice", "claire")
CORE = {"get_me", "list_datasets", "get_dataset", "list_audit_events", "verify_audit_chain"}


def valid_requests_are_accepted(ctx: object, response: object, case: object) -> None:
    """Schemathesis' positive-data check where JSON Schema states every rule: the trail's
    filter (minus "a date range must not end before it starts", a clear 422 on ``date_to``).
    The access operations' content rules (known variables, future dates, accreditation...)
    are the workflow's: a schema-valid body may be refused there, always with a 4xx naming
    the field, which the status-code and schema checks already verify."""
    if getattr(case, "meta", None) is None or response.status_code != 422:  # type: ignore[attr-defined]
        return
    if not case.meta.generation.mode.is_positive:  # type: ignore[attr-defined]
        return
    if getattr(case, "operation", None) is not None and \
            case.operation.definition.raw.get("operationId") != "list_audit_events":  # type: ignore[attr-defined]
        return
    fields = response.json()["error"]["fields"]  # type: ignore[attr-defined]
    assert fields and all(f == {"field": "date_to", "message": "error.date_order"}
                          for f in fields), f"a schema-valid request was refused: {fields}"


def _auth(case: object, headers: dict[str, str]) -> dict[str, str]:
    """The caller's token, unless this negative case left the required Authorization header
    out on purpose (sending it anyway would turn the case into a valid request)."""
    meta = getattr(case, "meta", None)
    given = {k.lower() for k in (getattr(case, "headers", None) or {})}
    if meta is not None and meta.is_negative_at(ParameterLocation.HEADER) \
            and "authorization" not in given:
        return {}
    return headers


@pytest.mark.timeout(300)
@pytest.mark.parametrize("who", CALLERS)
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_the_api_conforms_to_its_published_schema(shared_portal: Portal, mode: GenerationMode,
                                                   who: str) -> None:
    token = TOKEN.format(who)
    headers = {"Authorization": f"Bearer {token}"}
    shared_portal.hub.users[token] = HubUser(who, "user", frozenset({ACCESS_SCOPE}))
    schema = schemathesis.openapi.from_asgi(PREFIX + "api/v1/openapi.json", shared_portal.app,
                                            headers=headers)
    operations = [result.ok() for result in schema.get_all_operations()]
    names = {op.definition.raw.get("operationId") for op in operations}
    assert CORE | {"create_application", "update_application", "submit_application",
                   "decide_application", "move_project", "give_ethics_opinion",
                   "decide_change_request", "request_extension", "request_membership_change",
                   "list_applications", "list_privacy_budgets"} <= names
    if who != "gaelle":  # the trail's operations are fuzzed once, as the committee
        operations = [op for op in operations if op.definition.raw.get("operationId")
                      not in CORE]
    calls = 0
    statuses: dict[int, int] = {}
    for operation in operations:
        examples = EXAMPLES.get(operation.definition.raw.get("operationId"), DEFAULT_EXAMPLES)

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck), print_blob=False)
        def run(case: object) -> None:
            nonlocal calls
            response = case.call_and_validate(  # type: ignore[attr-defined]
                headers=_auth(case, headers), excluded_checks=[positive_data_acceptance],
                additional_checks=[valid_requests_are_accepted])
            calls += 1
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            assert response.status_code < 500

        run()
    assert calls >= 3 * len(operations), calls  # some operations have few distinct inputs
    print(f"{mode.value} as {who}: {calls} generated requests, statuses {sorted(statuses.items())}")
