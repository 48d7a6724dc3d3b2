"""Reading what a request sends: JSON bodies (strictly, with a bound on nesting) and query strings,
validated with pydantic models into 400/415/422 answers that say what to fix."""
from __future__ import annotations

import functools
import json
import math
from typing import Any

from flask import g, request
from pydantic import BaseModel, ValidationError

from ..errors import MalformedRequest, ValidationFailed


def _error_details(exc: ValidationError) -> list[dict[str, Any]]:
    details = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"]) or "(body)"
        problem = err["msg"]
        if err["type"] == "extra_forbidden":
            problem = "unknown field; remove it"
        elif err["type"] == "missing":
            problem = "required field is missing"
        details.append({"field": loc, "problem": problem, "type": err["type"]})
    return details


# How deeply a JSON body may nest objects and arrays. pydantic's parser stops at about 200 levels and
# Python's json module at the interpreter's recursion limit (a RecursionError); every level beyond this
# is refused alike with 400 malformed_json, on every JSON body (the consumer's report form included).
MAX_JSON_DEPTH = 128


def _too_deep() -> MalformedRequest:
    return MalformedRequest(f"the request body nests objects or arrays more than {MAX_JSON_DEPTH} levels deep; "
                            "send a flatter JSON document", code="malformed_json",
                            details={"max_depth": MAX_JSON_DEPTH})


def _depth_exceeds(value: Any, limit: int) -> bool:
    """Whether parsed JSON nests containers more than `limit` levels (iteratively: no recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def parse_model(model: type[BaseModel], data: Any, where: str, *, json_text: bytes | None = None) -> BaseModel:
    """Validate query data (lax: strings become numbers) or a JSON body (strict types).

    A JSON text that does not parse (malformed, or nested too deeply) is a 400 malformed_json, not a
    422: nothing in it could be validated."""
    try:
        if json_text is not None:
            return model.model_validate_json(json_text, strict=True)
        return model.model_validate(data)
    except ValidationError as exc:
        invalid_json = [e for e in exc.errors(include_url=False) if e["type"] == "json_invalid"]
        if json_text is not None and invalid_json:
            if "recursion limit" in invalid_json[0]["msg"]:
                raise _too_deep() from None
            raise MalformedRequest(f"the {where} is not valid JSON: {invalid_json[0]['msg']}",
                                   code="malformed_json") from None
        details = _error_details(exc)
        first = details[0]
        raise ValidationFailed(f"invalid {where}: {first['field']}: {first['problem']}"
                               + (f" (and {len(details) - 1} more)" if len(details) > 1 else ""),
                               details=details) from None


def read_json_body() -> Any:
    if not request.mimetype or request.mimetype != "application/json":
        raise MalformedRequest(
            f"send the body as JSON with Content-Type: application/json (got {request.mimetype or 'none'})",
            code="unsupported_media_type", status=415)
    raw = request.get_data(cache=True)
    if not raw:
        raise MalformedRequest("the request body is empty; send a JSON object", code="malformed_json")
    whole: list[bool] = []
    try:
        data = json.loads(raw, parse_float=functools.partial(_parse_float, whole))
    except RecursionError:
        raise _too_deep() from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedRequest(f"the request body is not valid JSON: {exc}", code="malformed_json") from None
    if _depth_exceeds(data, MAX_JSON_DEPTH):
        raise _too_deep()
    # A number like 437.0 is an integer in JSON Schema (and so in /openapi.json); the strict validation of
    # the body reads the text again, so it gets the text with such numbers written as integers.
    g.json_body_text = json.dumps(data, ensure_ascii=True).encode() if whole else raw
    return data


def _parse_float(whole: list[bool], text: str) -> float | int:
    value = float(text)
    if math.isfinite(value) and value.is_integer() and abs(value) < 2**63:
        whole.append(True)
        return int(value)
    return value


def json_body_text() -> bytes:
    """The JSON body as validated: after `read_json_body`, with whole numbers written as integers."""
    return g.get("json_body_text") or request.get_data(cache=True)


