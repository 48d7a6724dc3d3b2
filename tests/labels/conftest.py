"""Fixtures for the label library tests (no Flask app, no database); helpers are in helpers.py."""
from __future__ import annotations

import pytest

from labels.fonts import default_font


@pytest.fixture(scope="session")
def font():
    """The label font the library finds (Noto Sans CJK SC, installed by the project)."""
    return default_font()
