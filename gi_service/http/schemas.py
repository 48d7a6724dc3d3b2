"""The vocabulary every face validates input with: strict bodies and query strings (unknown fields are
refused, strings are stripped) and the field types they share."""
from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

Adcode = Annotated[str, Field(pattern=r"^[0-9]{6}$", description="6-digit administrative division code")]
Id = Annotated[int, Field(ge=1, le=2**31 - 1, description="row id")]
Offset = Annotated[int, Field(ge=0, le=2**31 - 1)]
Reason = Annotated[str, Field(min_length=2, max_length=1000, description="why the change is made (kept in history)")]
Year = Annotated[int, Field(ge=2000, le=2099)]


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def Absent(**kwargs: Any) -> Any:
    """An optional field that may be left out but is never null: `null` is refused (422) instead of
    reaching a NOT NULL column or a service that needs a value. Its schema carries no `null` default."""
    return Field(default=None, json_schema_extra=_no_default, **kwargs)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Query(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
