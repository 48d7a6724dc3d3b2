"""Chinese and English: one table of texts (``texts.TEXTS``) and one way to choose the language of an answer.

``choose_lang`` decides from the request: ``?lang=zh|en`` when given, else the choice the session
remembers (the signed-in pages: ``remember_lang`` keeps a ``?lang=`` for the rest of the session), else,
for answers that negotiate (the public pages, which keep no session), ``Accept-Language``; else Chinese.

The table is read in the shape each caller needs, in the table's order: ``t`` and ``v`` (a page's
words and the domain's values in the page's language), ``pair``/``pairs`` (``{"zh", "en"}`` objects of
the JSON answers), ``label``/``labels`` (``Label``: both languages drawn together, charts and files),
``by_lang`` (one dict of words per language, the public pages' templates).
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from flask import Request, request, session

from .texts import ERRORS_ZH, TEXTS

LANGS = ("zh", "en")
DEFAULT_LANG = "zh"


@dataclass(frozen=True)
class Label:
    """A label in Chinese with its English."""

    zh: str
    en: str = ""

    def text(self) -> str:
        return f"{self.zh} {self.en}".strip() if self.en and self.en != self.zh else self.zh


# --- the table, in the shapes its readers need ----------------------------------------------------------

def _under(prefix: str) -> dict[str, tuple[str, str]]:
    return {key[len(prefix):]: pair for key, pair in TEXTS.items() if key.startswith(prefix)}


def pair(key: str) -> dict[str, str]:
    """A text as a JSON answer carries it: ``{"zh": …, "en": …}``."""
    zh, en = TEXTS[key]
    return {"zh": zh, "en": en}


def pairs(prefix: str) -> dict[str, dict[str, str]]:
    """Every text under `prefix` (e.g. ``"gtin."``) as ``{"zh", "en"}`` objects, keyed by the rest of its key."""
    return {key: {"zh": zh, "en": en} for key, (zh, en) in _under(prefix).items()}


def label(key: str) -> Label:
    zh, en = TEXTS[key]
    return Label(zh, en)


def labels(prefix: str) -> dict[str, Label]:
    """Every text under `prefix` (e.g. ``"stats.mark."``) as a Label, keyed by the rest of its key."""
    return {key: Label(zh, en) for key, (zh, en) in _under(prefix).items()}


def by_lang(prefix: str) -> dict[str, dict[str, str]]:
    """Every text under `prefix` as one dict per language: ``{"zh": {key: …}, "en": {key: …}}``."""
    under = _under(prefix)
    return {"zh": {key: zh for key, (zh, _en) in under.items()}, "en": {key: en for key, (_zh, en) in under.items()}}


#: The domain's enum values as people read them (``v``), from the table's ``value.*`` keys.
VALUES = _under("value.")


# --- choosing the language --------------------------------------------------------------------------------

def asked_lang(req: Request) -> str | None:
    """The language a request asks for with ``?lang=zh|en`` (None if it asks for none we have)."""
    asked = req.args.get("lang", "").strip().lower()[:2]
    return asked if asked in LANGS else None


def choose_lang(req: Request, *, remembered: str | None = None, negotiate: bool = False) -> str:
    """The language of the answer to `req`: ``?lang=``, else the session's `remembered` choice, else (with
    `negotiate`) the Accept-Language header's preference between Chinese and English, else Chinese."""
    asked = asked_lang(req)
    if asked is not None:
        return asked
    if remembered in LANGS:
        return remembered
    if negotiate and req.accept_languages.best_match(LANGS) == "en":
        return "en"
    return DEFAULT_LANG


# --- the signed-in pages: the session's language ---------------------------------------------------------

def current_lang() -> str:
    """The language of this page (the session remembers the choice; Chinese until one is made)."""
    return choose_lang(request, remembered=session.get("lang"))


def remember_lang() -> None:
    """`?lang=zh|en` on any page switches the language for the rest of the session."""
    asked = asked_lang(request)
    if asked is not None and session.get("lang") != asked:
        session["lang"] = asked


def t(key: str, **values: Any) -> str:
    zh, en = TEXTS[key]
    text = en if current_lang() == "en" else zh
    return text.format(**values) if values else text


def v(value: Any) -> str:
    """A domain value (enum or its string) in the page's language; unknown values as they are."""
    if value is None:
        return "—"
    key = value.value if isinstance(value, Enum) else str(value)
    found = VALUES.get(key)
    if found is None:
        return key
    return found[1] if current_lang() == "en" else found[0]


def error_text(code: str, message: str) -> str:
    """A service error for people: the Chinese summary of its code first (zh), then the message."""
    if current_lang() == "zh" and code in ERRORS_ZH:
        return f"{ERRORS_ZH[code]}：{message}"
    return message
