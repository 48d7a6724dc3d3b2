"""The one exception the label library raises for a request it cannot honour."""
from __future__ import annotations


class LabelError(ValueError):
    """A label, sheet or font request that cannot be honoured; ``code`` is stable, ``message`` says what to do."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"LabelError({self.code!r}, {self.message!r})"
