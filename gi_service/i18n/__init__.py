"""Texts in Chinese and English."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Label:
    """A label in Chinese with its English."""

    zh: str
    en: str = ""

    def text(self) -> str:
        return f"{self.zh} {self.en}".strip() if self.en and self.en != self.zh else self.zh
