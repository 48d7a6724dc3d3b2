"""Point -> county lookup (JurisdictionIndex) and its on-disk cache."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from geodata.lookup import JurisdictionIndex, _cache_file, default_cache_dir, naive_lookup

KNOWN_POINTS = [
    ((120.13, 30.25), "330106"),  # West Lake, Hangzhou 西湖区
    ((116.41, 39.92), "110101"),  # Dongcheng, Beijing 东城区
    ((115.78, 33.85), "341602"),  # Qiaocheng, Bozhou 谯城区
    ((127.16, 44.92), "230184"),  # Wuchang 五常市
    ((113.45, 30.36), "429004"),  # Xiantao 仙桃市 (province-administered)
    ((113.75, 23.02), "441900"),  # Dongguan 东莞市 (city without districts)
    ((108.38, 30.80), "500101"),  # Wanzhou, Chongqing 万州区
    ((114.155, 22.28), "810001"),  # Central and Western, Hong Kong 中西区
    ((121.52, 25.04), "710000"),  # Taipei, Taiwan
    ((86.05, 44.30), "659001"),  # Shihezi 石河子市
]

OUTSIDE_POINTS = [
    (125.0, 30.0),  # East China Sea
    (106.9, 47.9),  # Ulaanbaatar, Mongolia
    (150.0, 20.0),  # Pacific Ocean
    (-30.0, 40.0),  # Atlantic Ocean
]


@pytest.mark.parametrize(("point", "adcode"), KNOWN_POINTS)
def test_known_points(county_index, point, adcode):
    """Does a point well inside a county (WGS-84) map to that county's adcode?"""
    assert county_index.lookup(*point).tolist() == [adcode]


@pytest.mark.parametrize("point", OUTSIDE_POINTS)
def test_points_outside_china_land_get_no_county(county_index, point):
    """Does a point in the sea or abroad get ''?"""
    assert county_index.lookup(*point).tolist() == [""]


def test_batch_lookup_matches_single_lookups(county_index):
    """Does one vectorized call give the same answers as one call per point?"""
    points = [p for p, _ in KNOWN_POINTS] + OUTSIDE_POINTS
    lon = np.array([p[0] for p in points])
    lat = np.array([p[1] for p in points])
    batch = county_index.lookup(lon, lat)
    assert batch.dtype.kind == "U"
    assert batch.tolist() == [county_index.lookup(x, y)[0] for x, y in points]


def test_fast_lookup_agrees_with_naive_loop(county_index):
    """Do the fast index and the naive per-point loop agree on a few hundred random points?"""
    rng = np.random.default_rng(2024)
    # Half over China's whole bbox (mostly sea and abroad), half over the dense east.
    lon = np.concatenate([rng.uniform(73.5, 135.1, 200), rng.uniform(105.0, 122.0, 200)])
    lat = np.concatenate([rng.uniform(3.8, 53.6, 200), rng.uniform(22.0, 41.0, 200)])
    fast = county_index.lookup(lon, lat)
    naive = naive_lookup(lon, lat, county_index.plain_geometries(), county_index.adcodes)
    assert (fast != "").sum() > 150
    np.testing.assert_array_equal(fast, naive)


def test_point_in_a_hole_is_not_in_the_holed_county(county_index):
    """Is a point inside a county's hole (an enclave) given to the enclave, not the surrounding county?"""
    found = 0
    for adcode, geom in zip(county_index.adcodes, county_index.geometries):
        for polygon in geom.geoms:
            for ring in polygon.interiors:
                hole = shapely.Polygon(ring)
                if hole.area < 1e-3:
                    continue
                p = hole.representative_point()
                code = county_index.lookup(p.x, p.y)[0]
                assert code != adcode
                assert code == naive_lookup(p.x, p.y, county_index.plain_geometries(), county_index.adcodes)[0]
                found += 1
                break
            if found >= 3:
                break
        if found >= 3:
            break
    assert found == 3


def test_multipolygon_islands(county_index):
    """Is a point on an outlying island of a multipolygon county found?"""
    geom = county_index.geometry("460302")  # Nansha 南沙区: many reefs
    assert len(geom.geoms) > 10
    smallest = min(geom.geoms, key=lambda p: p.area)
    p = smallest.representative_point()
    assert county_index.lookup(p.x, p.y)[0] == "460302"


def test_point_on_shared_border_gets_one_county_deterministically(county_index):
    """Does a point exactly on the border of two counties go to the smaller adcode, every time?"""
    a = county_index.geometry("341602")
    b = county_index.geometry("341621")
    shared = set(map(tuple, shapely.get_coordinates(a))) & set(map(tuple, shapely.get_coordinates(b)))
    assert shared
    x, y = sorted(shared)[len(shared) // 2]
    results = {county_index.lookup(x, y)[0] for _ in range(3)}
    assert results == {"341602"}
    naive = naive_lookup(x, y, county_index.plain_geometries(), county_index.adcodes)
    assert naive.tolist() == ["341602"]


def test_nan_and_shapes(county_index):
    """Are NaN coordinates '' and mismatched lon/lat lengths refused?"""
    out = county_index.lookup(np.array([np.nan, 120.13]), np.array([30.25, 30.25]))
    assert out.tolist() == ["", "330106"]
    assert county_index.lookup(np.array([]), np.array([])).tolist() == []
    with pytest.raises(ValueError):
        county_index.lookup(np.array([1.0, 2.0]), np.array([1.0]))


def test_lookup_point_gives_county_city_province(county_index):
    """Does lookup_point name the county, city and province holding a point?"""
    units = county_index.lookup_point(120.13, 30.25)
    assert units["county"].adcode == "330106"
    assert units["city"].adcode == "330100"
    assert units["province"].adcode == "330000"
    assert county_index.lookup_point(125.0, 30.0) == {"county": None, "city": None, "province": None}


@pytest.mark.parametrize(
    ("adcode", "county", "city", "province"),
    [
        ("110101", "110101", "110100", "110000"),
        ("500101", "500101", "500000", "500000"),
        ("441900", "441900", "441900", "440000"),
        ("429004", "429004", "429004", "420000"),
        ("710000", "710000", "710000", "710000"),
    ],
)
def test_units_for_special_cases(county_index, adcode, county, city, province):
    """Does units_for fill county/city/province from the tiers the data lists, for every special case?"""
    units = county_index.units_for(adcode)
    assert (units["county"].adcode, units["city"].adcode, units["province"].adcode) == (county, city, province)


def test_index_covers_every_county(county_index, registry):
    """Does the index hold exactly the registry's county-level units, in adcode order?"""
    assert county_index.adcodes.tolist() == [u.adcode for u in registry.counties()]
    assert county_index.data_version == registry.data_version


def test_default_cache_dir(monkeypatch, tmp_path):
    """Is the cache dir $GI_CACHE_DIR, else $XDG_CACHE_HOME/gi-service, else ~/.cache/gi-service?"""
    monkeypatch.setenv("GI_CACHE_DIR", str(tmp_path / "explicit"))
    assert default_cache_dir() == tmp_path / "explicit"
    monkeypatch.delenv("GI_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "gi-service"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "gi-service"


def test_cache_is_built_then_reused(tmp_path, subset_registry):
    """Is the converted-boundary cache written on first load and read on the next?"""
    first = JurisdictionIndex.load(cache_dir=tmp_path, registry=subset_registry)
    assert first.loaded_from_cache is False
    assert first.cache_path.exists()
    assert "subset-test" in first.cache_path.name
    second = JurisdictionIndex.load(cache_dir=tmp_path, registry=subset_registry)
    assert second.loaded_from_cache is True
    assert second.adcodes.tolist() == ["341602", "341621", "341622", "341623"]
    for g1, g2 in zip(first.geometries, second.geometries):
        assert shapely.equals_exact(g1, g2, tolerance=0)
    assert second.lookup(115.78, 33.85).tolist() == ["341602"]


@pytest.mark.parametrize("damage", ["truncate", "garbage", "flip"])
def test_corrupt_cache_is_rebuilt(tmp_path, subset_registry, damage):
    """Is a damaged cache file ignored and rebuilt rather than trusted or crashing?"""
    index = JurisdictionIndex.load(cache_dir=tmp_path, registry=subset_registry)
    path = index.cache_path
    raw = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(raw[: len(raw) // 2])
    elif damage == "garbage":
        path.write_bytes(b"not a cache")
    else:  # flip bytes in the middle of the stored WKB: only the digest catches this
        mid = len(raw) // 2
        path.write_bytes(raw[:mid] + bytes(b ^ 0xFF for b in raw[mid : mid + 64]) + raw[mid + 64 :])
    rebuilt = JurisdictionIndex.load(cache_dir=tmp_path, registry=subset_registry)
    assert rebuilt.loaded_from_cache is False
    assert rebuilt.lookup(115.78, 33.85).tolist() == ["341602"]
    assert JurisdictionIndex.load(cache_dir=tmp_path, registry=subset_registry).loaded_from_cache is True


def test_cache_from_other_data_version_is_not_used(tmp_path, subset_registry):
    """Is a cache file recording another data version rebuilt even under the expected name?"""
    index = JurisdictionIndex.load(cache_dir=tmp_path, registry=subset_registry)
    other = type(subset_registry)(["341600"], version_suffix="other-version")
    expected_name = _cache_file(tmp_path, other.data_version)
    expected_name.write_bytes(index.cache_path.read_bytes())
    reloaded = JurisdictionIndex.load(cache_dir=tmp_path, registry=other)
    assert reloaded.loaded_from_cache is False
    assert JurisdictionIndex.load(cache_dir=tmp_path, registry=other).loaded_from_cache is True


def test_unwritable_cache_dir_still_works(tmp_path, subset_registry):
    """Does the index still load when the cache directory cannot be created?"""
    blocker = tmp_path / "file"
    blocker.write_text("a file where a directory should be")
    index = JurisdictionIndex.load(cache_dir=blocker / "cache", registry=subset_registry)
    assert index.loaded_from_cache is False
    assert index.lookup(115.78, 33.85).tolist() == ["341602"]


def test_concurrent_first_lookups_agree(county_index, registry):
    """Do threads hitting a fresh (unprepared) index at once all get the single-threaded answers?"""
    import threading

    rng = np.random.default_rng(11)
    lon = rng.uniform(105.0, 122.0, 5_000)
    lat = rng.uniform(22.0, 41.0, 5_000)
    expected = county_index.lookup(lon, lat)
    fresh = JurisdictionIndex(county_index.adcodes, county_index.plain_geometries(), registry=registry)
    results: list[np.ndarray] = []
    barrier = threading.Barrier(6)

    def work():
        barrier.wait()
        results.append(fresh.lookup(lon, lat))

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 6
    for got in results:
        np.testing.assert_array_equal(got, expected)
