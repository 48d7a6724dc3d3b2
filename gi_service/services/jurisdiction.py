"""Jurisdictions: the adcodes of a division's subtree, and point -> county/city/province.

A jurisdiction (an authority's or inspection unit's, or a division asked for) is an adcode and everything
below it: ``subtree_codes`` lists them, ``jurisdiction_codes`` gives None for all of China (no filter), and
``division_codes`` does the same for a code a caller gave (422 unknown_adcode for one that is no division).
Points are placed by one shared JurisdictionIndex per process (``county_at``, ``classify``).
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Sequence

import numpy as np

from geodata.admin import AdminUnit, get_registry
from geodata.lookup import JurisdictionIndex

from ..errors import ValidationFailed

NATIONAL = "100000"

_lock = threading.Lock()
_index: JurisdictionIndex | None = None
_cache_dir: Path | None = None


# --- subtrees ---------------------------------------------------------------------------------------

def subtree_codes(adcode: str) -> list[str]:
    """The adcode and the adcodes of every unit below it."""
    return [adcode] + [u.adcode for u in get_registry().descendants(adcode)]


def jurisdiction_codes(adcode: str) -> list[str] | None:
    """The adcodes of a jurisdiction's subtree, or None for the whole country."""
    if adcode == NATIONAL:
        return None
    return subtree_codes(adcode)


def division_codes(adcode: str, field: str = "adcode") -> list[str] | None:
    """The adcodes of a division's subtree (None: all of China); 422 unknown_adcode for a code that is no division."""
    if get_registry().get(adcode) is None:
        raise ValidationFailed(f"adcode {adcode} is not a known administrative division", code="unknown_adcode",
                               details=[{"field": field, "problem": "unknown adcode"}])
    return jurisdiction_codes(adcode)


# --- points ----------------------------------------------------------------------------------------

def configure(cache_dir: Path | None) -> None:
    """Set where the converted county boundaries are cached (the app passes instance/cache)."""
    global _cache_dir
    _cache_dir = cache_dir


def get_index() -> JurisdictionIndex:
    global _index
    if _index is None:
        with _lock:
            if _index is None:
                _index = JurisdictionIndex.load(cache_dir=_cache_dir)
    return _index


def is_loaded() -> bool:
    """Whether this process holds the county boundaries already (no lookup will have to load them)."""
    return _index is not None


# A point every lookup path knows (Beijing, Dongcheng): looking it up prepares the polygons for lookups
# and reads the administrative units' index, the two costs a first lookup would otherwise pay.
_WARM_POINT = (116.4, 39.91)


def preload() -> JurisdictionIndex:
    """Load the county boundaries now, ready for lookups, instead of on the first lookup.

    gi_service.wsgi calls it in gunicorn's master before the workers fork (preload_app), so every
    worker, a recycled one too, starts with the boundaries in memory (shared copy-on-write); `gi-service
    serve` calls it before it listens. Without it the first place lookup of each process paid the
    load: 0.7-7.7 s, and the conversion of all ~2,870 counties when the disk cache was missing.
    """
    index = get_index()
    classify([_WARM_POINT[0]], [_WARM_POINT[1]])
    return index


def county_at(lon: float, lat: float) -> str | None:
    code = get_index().lookup(np.array([lon]), np.array([lat]))[0]
    return str(code) or None


def _unit(unit: AdminUnit | None) -> dict | None:
    return None if unit is None else {"adcode": unit.adcode, "name": unit.name, "level": unit.level}


def classify(lons: Sequence[float], lats: Sequence[float]) -> list[dict]:
    """County, city and province of each point (None where a point is outside China's counties)."""
    index = get_index()
    codes = index.lookup(np.asarray(lons, dtype=float), np.asarray(lats, dtype=float))
    empty = {"county": None, "city": None, "province": None}
    cache: dict[str, dict] = {}
    out = []
    for code in codes:
        code = str(code)
        if code not in cache:
            # units_for knows the special tiers (Dongguan is a city standing in as a county, ...).
            cache[code] = {tier: _unit(u) for tier, u in index.units_for(code).items()} if code else empty
        out.append(cache[code])
    return out
