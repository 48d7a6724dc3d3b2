"""Is /openapi.json true? schemathesis drives every operation it documents, in-process (WSGI).

Each operation is called anonymously and as each kind of account (authority, producer, printer,
inspection unit) with data generated from the document: schema-valid data (which must be accepted, or
refused only for a reason the document gives: 401/403/404/409) and schema-invalid data (which must be
refused with a 4xx). Every answer is checked by schemathesis' `not_a_server_error`,
`status_code_conformance`, `content_type_conformance`, `response_headers_conformance`,
`response_schema_conformance`, `negative_data_rejection` and `positive_data_acceptance`; the test fails on
any failure, except a schema-valid request refused for a reason no schema can state (DATA_REFUSALS: an
unknown adcode, a wrong check character, ...) and the short, commented TOLERATED list of known gaps.

The web pages are called the same way: a bearer token names the caller on a page, so its writes need no CSRF
token and reach the form fields the document describes; the anonymous caller, which has no session, is refused
for lack of the session's CSRF token (400 csrf_failed), a refusal the document gives and no schema can state. The
pages' HTML errors name their code in the X-Error-Code header, read like the API's JSON `error`.

Deterministic and bounded: a fixed seed, derandomized Hypothesis, no deadline, no example database, no
shrinking, and a fixed number of examples per operation, mode and caller. It runs in the `heavy` tier,
once per backend (`pytest -m heavy tests/api/test_schemathesis.py`).
"""
from __future__ import annotations

import os
import re
from collections import defaultdict

import hypothesis
import hypothesis.errors
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (content_type_conformance, negative_data_rejection,
                                               positive_data_acceptance, response_headers_conformance,
                                               response_schema_conformance, status_code_conformance)

from tests.factories import LedgerWorld

pytestmark = pytest.mark.heavy

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance, negative_data_rejection, positive_data_acceptance]
SEED = 15
# Examples per operation, generation mode and caller: the callers an operation admits get REAL schema-valid
# ones (and the first of them REAL invalid ones), the others (refused with 401/403 before their input is read)
# FEW.
REAL, FEW = 2, 1

# No operation is left out (the pattern matches nothing); kept for a quick local narrowing.
EXCLUDED = re.compile(r"^$")

# Refusals of schema-valid data that depend on what is stored, on check characters or on file contents —
# nothing a JSON Schema can state. A 422 with one of these error codes is not a positive_data_acceptance
# failure (the document names them in its 422 descriptions); any other 422 or 400 for valid data is.
DATA_REFUSALS = {
    "unknown_adcode",        # a well-formed adcode that is no administrative division
    "invalid_serial",        # a serial whose MOD 37-36 check character or sequence is wrong
    "invalid_uscc",          # a USCC whose check character is wrong
    "invalid_geometry",      # GeoJSON that is not a valid (multi)polygon, an unreadable upload
    "plot_outside_area",     # a plot outside its GI's stored production area
    "point_outside_china",   # a finding's point in none of China's stored counties
    "not_an_image",          # an upload that is not a readable PNG/JPEG
    "unreadable_file",       # an import's file that is no workbook or CSV a spreadsheet program wrote
    "empty_file",            # an import's file without a header row
    "missing_columns",       # an import's file whose header lacks a required column
    "no_change",             # an amendment equal to the stored record
    "same_account",          # a quota transfer to the account's own holder
    "weak_password",         # a password in the bundled common-password list, or too few kinds of characters
    "passwords_differ",      # a new password and its repetition that differ (equality of two fields)
}

# Known conformance failures this test tolerates for now: (operation pattern, check, why). Keep it short.
TOLERATED: list[tuple[str, str, str]] = [
    (r"GET /api/v1/statistics.*", "positive_data_acceptance",
     "the period rules between year, from_year and to_year (year_required, period_reversed, ...) are not "
     "expressible as OpenAPI query parameters; the 422 names the rule"),
    (r"(GET|PATCH|POST) /api/v1/annual-reports/\{year\}/mine.*|POST /app/annual-report/(declare|submit)",
     "positive_data_acceptance",
     "a report's year must be over (before the current year): relative to the server's clock (the API and the "
     "producer's report page)"),
    (r"POST (/api/v1/findings|/app/findings/new)", "positive_data_acceptance",
     "observed_at must lie within the last year: relative to the server's clock (the API's body and the web form "
     "are read by the same service)"),
    (r"GET /collections/\{collection_id\}/items", "positive_data_acceptance",
     "bbox needs minLat <= maxLat, which its pattern cannot state (400 bad_bbox)"),
    (r"GET /api/v1/(marks/\{serial\}/label|batches/\{batch_id\}/print-file)", "positive_data_acceptance",
     "a label size is a preset or both width_mm and height_mm, never both: a rule between query parameters"),
    (r"GET (/01/\{dl_path\}|/p/\{gtin\})", "positive_data_acceptance",
     "a GTIN's check digit cannot be stated in a pattern (400: the malformed verdict, or invalid_gtin)"),
]


def _tolerated(label: str, check: str) -> bool:
    return any(re.fullmatch(pattern, label) and check == name for pattern, name, _why in TOLERATED)


def _settings(max_examples: int):
    return settings(max_examples=max_examples, derandomize=True, deadline=None, database=None,
                    phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck),
                    print_blob=False, report_multiple_bugs=False)


@pytest.fixture
def world(factory, client):
    """Data the operations can reach: a GI with its area, an authorized producer with a plot, a quota and an
    issued batch, a printer and an inspection unit, all of one jurisdiction."""
    w = LedgerWorld(factory, client)
    w.batch = w.printed_and_issued(20)
    w.inspection = factory.inspection("341600")
    return w


def _callers(world) -> dict[str, dict[str, str]]:
    return {"anonymous": {}, "authority": world.authority.headers, "producer": world.producer.headers,
            "printer": world.printer.headers, "inspection": world.inspection.headers}


def _path_values(world) -> dict[str, object]:
    """Real ids for path parameters of schema-valid cases, so they reach the code behind the 404s."""
    batch = world.batch
    return {"gi_id": world.gi.id, "producer_id": world.producer.org.id, "account_id": world.account["id"],
            "batch_id": batch["id"], "request_id": batch.get("request_id", 1), "serial": batch["first_serial"]
            if "first_serial" in batch else None, "org_id": world.producer.org.id, "collection_id": "origin-areas",
            "feature_id": world.gi.id, "version": 1}


def _error_code(response) -> str | None:
    """The stable error code: the JSON error's `error`, or the web pages' X-Error-Code header (their errors are
    HTML pages)."""
    header = response.headers.get("x-error-code")  # schemathesis: lowercase names, lists of values
    if header:
        return header[0]
    try:
        body = response.json()
    except Exception:
        return None
    return body.get("error") if isinstance(body, dict) else None


def _refused_for_data(response, caller: str) -> bool:
    """Whether a refusal of schema-valid data is for a reason the document gives and no schema can state: a
    DATA_REFUSALS code (422), or a web write's missing CSRF token when no bearer token names the caller (400
    csrf_failed: the token must be the session's, which this caller, without a session, cannot have)."""
    code = _error_code(response)
    if response.status_code == 422 and code in DATA_REFUSALS:
        return True
    return caller == "anonymous" and response.status_code == 400 and code == "csrf_failed"


def _error_of(response) -> str:
    try:
        body = response.json()
    except Exception:
        return _error_code(response) or ""
    if isinstance(body, dict) and "error" in body:
        return f"{body['error']}: {str(body.get('message'))[:160]}"
    return ""


def _negatable(operation) -> bool:
    """Whether schema-invalid data can be made for this operation: a body, a query parameter, or a path
    parameter whose schema is more than "any string" (any string fills a path segment)."""
    raw = operation.definition.raw
    if "requestBody" in raw:
        return True
    for param in raw.get("parameters", []):
        if param["in"] != "path" or param.get("schema", {}) != {"type": "string"}:
            return True
    return False


def _admits(operation, caller: str) -> bool:
    access = operation.definition.raw.get("x-access", "")
    if caller == "anonymous":
        return access.startswith("public")
    if access.startswith("public") or access.startswith("any signed-in"):
        return True
    kinds = access.split(";")[0]
    return caller in kinds


def test_openapi_document_is_true(app, world):
    """Does every operation of /openapi.json, called by every kind of caller with schema-valid and schema-invalid
    data, answer as the document says (no 5xx, documented statuses, content types, headers and bodies; valid
    data accepted, invalid data refused)?"""
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    schema.config.generation.update(with_security_parameters=False, deterministic=True)
    values = {k: v for k, v in _path_values(world).items() if v is not None}
    failures: dict[tuple[str, str], list[str]] = defaultdict(list)
    calls = 0
    for result in schema.get_all_operations():
        if not hasattr(result, "ok"):
            raise AssertionError(f"an operation of /openapi.json cannot be read: {result.err()}")
        operation = result.ok()
        if EXCLUDED.match(operation.path):
            continue
        label = f"{operation.method.upper()} {operation.path}"
        params = {p.name for p in operation.path_parameters}
        negated = False
        for caller, headers in _callers(world).items():
            admitted = _admits(operation, caller)
            n = REAL if admitted else FEW
            # A caller refused before its input is read gets one schema-valid example; invalid data goes to the
            # first admitted caller (it reaches the parsing), where something can be made invalid.
            modes = [GenerationMode.POSITIVE]
            if admitted and not negated and _negatable(operation):
                modes.append(GenerationMode.NEGATIVE)
                negated = True
            for mode in modes:
                fixed = {k: v for k, v in values.items() if k in params} if mode.is_positive else {}
                strategy = operation.as_strategy(generation_mode=mode, path_parameters=fixed or None)

                @_settings(n)
                @hypothesis.seed(SEED)
                @given(case=strategy)
                def run(case):
                    nonlocal calls
                    calls += 1
                    response = case.call(headers=headers)
                    for check in CHECKS:
                        try:
                            case.validate_response(response, checks=[check], headers=headers)
                        except FailureGroup as group:
                            if check is positive_data_acceptance and _refused_for_data(response, caller):
                                continue
                            for failure in group.exceptions:
                                failures[(label, check.__name__)].append(
                                    f"{caller} {mode.value}: {response.status_code} {_error_of(response)} "
                                    f"{failure.title}: {failure.message[:200]!r} body={str(case.body)[:200]!r} "
                                    f"query={case.query} path={case.path_parameters}")

                try:
                    run()
                except hypothesis.errors.Unsatisfiable:
                    # Nothing to make invalid (no parameters, no body): the positive cases cover it.
                    assert mode.is_negative, label
    untolerated = {key: msgs for key, msgs in failures.items() if not _tolerated(*key)}
    assert calls > 1000, calls  # every operation was really called
    report = "\n".join(f"{op} [{check}] x{len(msgs)}: {msgs[0]}" for (op, check), msgs in sorted(untolerated.items()))
    if os.environ.get("GI_SCHEMATHESIS_ALL"):
        # Every failure, not only the first of each operation and check (for a local investigation).
        report = "\n".join(f"{op} [{check}]: {msg}" for (op, check), msgs in sorted(untolerated.items())
                           for msg in msgs)
    assert not untolerated, f"{len(untolerated)} conformance failures:\n{report}"
