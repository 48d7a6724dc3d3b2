"""The HTTP contract, byte for byte: GET /openapi.json is the committed tests/api/openapi.golden.json.

Moving code around (blueprints, modules, packages) must not change a single operation id, parameter, schema
or answer. A change to the API that is meant makes this test fail on purpose: look at the diff, then write
the new document with `GI_WRITE_OPENAPI_GOLDEN=1 pytest tests/api/test_openapi_golden.py` and commit it
with the change.
"""
from __future__ import annotations

import difflib
import json
import os
from pathlib import Path

GOLDEN = Path(__file__).with_name("openapi.golden.json")


def test_the_served_document_is_the_committed_one(client):
    """Is /openapi.json exactly the committed document (nothing added, removed or reordered)?"""
    served = client.get("/openapi.json").get_data()
    if os.environ.get("GI_WRITE_OPENAPI_GOLDEN") == "1":
        GOLDEN.write_bytes(served)
    golden = GOLDEN.read_bytes()
    if served != golden:
        diff = difflib.unified_diff(json.dumps(json.loads(golden), indent=1, sort_keys=True).splitlines(),
                                    json.dumps(json.loads(served), indent=1, sort_keys=True).splitlines(),
                                    "committed", "served", lineterm="", n=2)
        shown = "\n".join(list(diff)[:80])
        raise AssertionError(f"/openapi.json differs from {GOLDEN.name} (first lines of the diff):\n{shown}")
