"""The validator the EPCIS tests rely on: the official schema, really enforcing its formats."""
from __future__ import annotations

import copy
import hashlib
import json

from .conftest import SHARED, VENDORED_SCHEMA, is_uri, make_validator, schema_errors

VENDORED_SHA256 = "ed3228d7867198b4a5be9748fe77f473457c6ed98224fab28a950b4ce634a041"
EXAMPLES = ("Example_9.6.1-ObjectEvent.jsonld", "Example_9.6.1-ObjectEventWithDigitalLink.jsonld",
            "Example_9.6.3-AggregationEvent.jsonld")

A_VALID_EVENT = {
    "type": "ObjectEvent", "eventTime": "2026-04-10T02:00:00.000Z", "eventTimeZoneOffset": "+08:00",
    "epcList": ["urn:gi-service:mark:BBSH26000000001R"], "action": "ADD", "bizStep": "commissioning",
    "disposition": "active", "ilmd": {"cbvmda:lotNumber": "L-1"},
}


def _doc(*events) -> dict:
    return {"@context": ["https://ref.gs1.org/standards/epcis/epcis-context.jsonld", {"gi": "urn:gi-service:epcis:"}],
            "type": "EPCISDocument", "schemaVersion": "2.0", "creationDate": "2026-04-10T02:00:00.000Z",
            "epcisBody": {"eventList": list(events)}}


def test_the_vendored_schema_is_the_official_file():
    """Is the copy in the repository byte for byte the schema it says it is (and the shared one, when present)?"""
    data = VENDORED_SCHEMA.read_bytes()
    assert hashlib.sha256(data).hexdigest() == VENDORED_SHA256
    assert json.loads(data)["$id"] == "https://gs1.github.io/EPCIS/EPCIS-JSON-Schema.json"
    shared = SHARED / "EPCIS-JSON-Schema.json"
    if shared.is_file():
        assert shared.read_bytes() == data


def test_the_official_examples_pass():
    """Does the validator, with its format checks, accept GS1's own example documents?"""
    validator = make_validator()
    # GS1's examples live beside the shared schema; a clean clone without it checks our own minimal document.
    documents = [json.loads((SHARED / name).read_text(encoding="utf-8")) for name in EXAMPLES
                 if (SHARED / name).is_file()]
    documents.append(_doc(A_VALID_EVENT))
    for doc in documents:
        assert schema_errors(validator, doc) == []


def test_the_validator_rejects_what_the_standard_forbids():
    """Are wrong vocabulary, ilmd on OBSERVE, bare extension names, bad times and non-URIs each refused?"""
    validator = make_validator()
    assert schema_errors(validator, _doc(A_VALID_EVENT)) == []
    broken = {
        "unknown bizStep": {"bizStep": "printing"},
        "unknown disposition": {"disposition": "lost"},
        "ilmd outside ADD": {"action": "OBSERVE"},
        "extension field without a namespace": {"verdict": "genuine"},
        "eventTime not a date-time": {"eventTime": "2026-04-10 02:00"},
        "offset out of range": {"eventTimeZoneOffset": "+8:00"},
        "EPC that is not a URI": {"epcList": ["BBSH26000000001R"]},
        "EPC with a space": {"epcList": ["urn:gi-service:mark:BBSH 26000000001R"]},
        "ilmd key that is not a URI": {"ilmd": {"lot number": "L-1"}},
    }
    for name, change in broken.items():
        event = copy.deepcopy(A_VALID_EVENT)
        event.update(change)
        assert schema_errors(validator, _doc(event)), f"{name} was accepted"
    no_context = _doc(A_VALID_EVENT)
    del no_context["@context"]
    assert schema_errors(validator, no_context)
    document_extension = _doc(A_VALID_EVENT) | {"nextPageToken": "x"}
    assert schema_errors(validator, document_extension), "a bare document-level extension was accepted"
    assert schema_errors(validator, _doc(A_VALID_EVENT) | {"gi:nextPageToken": "x"}) == []


def test_uri_check():
    """Does the URI check accept the identifiers we export and refuse malformed ones?"""
    for good in ("urn:gi-service:mark:BBSH26000000001R", "https://id.gs1.org/01/09506000134352/21/BBSH26000000001R",
                 "geo:23.13,113.26;u=800", "gi:verdict", "cbvmda:lotNumber",
                 "urn:uuid:7d19d3de-2de6-4b6c-8845-cb396b79b0dc",
                 "urn:gi-service:mark-range:BBSH26000000001R-BBSH26001000000E", "http://x.test/a%20b#frag"):
        assert is_uri(good), good
    for bad in ("BBSH26000000001R", "1abc:x", "urn:gi service", "http://x.test/%zz", "urn:亳白芍", "a:b#c#d", ""):
        assert not is_uri(bad), bad
