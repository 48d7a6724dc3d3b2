"""The words of the inspection, supervision and report pages: every value the pages name through a computed key
(a violation kind, a verdict, a case status, a party role, an event, ...) has Chinese and English text."""
from __future__ import annotations

import ast
import re
from pathlib import Path

from gi_service.models import (AlertKind, CaseOutcome, CasePartyRole, CaseStatus, ClueKind, ClueStatus,
                               CreditEntryKind, PlaceRole, PremisesKind, Verdict, ViolationKind)
from gi_service.services import cases
from gi_service import i18n
from gi_service.web.inspect_pages import SCRIPT_WORDS
from gi_service.web.report_pages import LISTING_STATUSES

SERVICES = Path(cases.__file__).resolve().parent


def _event_actions() -> set[str]:
    """Every action the case service writes into a case's event log."""
    tree = ast.parse((SERVICES / "cases.py").read_text(encoding="utf-8"))
    actions = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "_event" and len(node.args) >= 4:
            if isinstance(node.args[3], ast.Constant):
                actions.add(node.args[3].value)
    return actions


def test_every_computed_key_of_the_supervision_pages_has_both_languages():
    """Does each enum value the pages turn into a text key (t('violation_' ~ kind) and the like) exist in the word
    table, with Chinese and English?"""
    keys = [f"violation_{k.value}" for k in ViolationKind] + [f"premises_{k.value}" for k in PremisesKind]
    keys += [f"verdict_{k.value}" for k in Verdict] + [f"clue_{k.value}" for k in ClueStatus]
    keys += [f"clue_kind_{k.value}" for k in ClueKind] + [f"alert_{k.value}" for k in AlertKind]
    keys += [f"place_{k.value}" for k in PlaceRole] + [f"case_{k.value}" for k in CaseStatus]
    keys += [f"outcome_{k.value}" for k in CaseOutcome] + [f"credit_{k.value}" for k in CreditEntryKind]
    keys += [f"role_{k.value}" for k in CasePartyRole] + ["role_owner", "role_supervisor"]
    keys += [f"event_{a}" for a in _event_actions()] + [f"report_{s}" for s in LISTING_STATUSES]
    keys += [f"queue_{q}" for q in ("mine", "party", "all")] + [f"queue_{q}_hint" for q in ("mine", "party", "all")]
    keys += list(SCRIPT_WORDS)
    assert len(_event_actions()) >= 7
    missing = [k for k in keys if k not in i18n.TEXTS]
    assert missing == []
    for key in keys:
        zh, en = i18n.TEXTS[key]
        assert re.search(r"[\u4e00-\u9fff]", zh) and en.strip(), key
