"""Label sizes, the 0.25 mm module rule and the layout: everything in its place, nothing in the quiet zone."""
from __future__ import annotations

import itertools

import pytest

from labels import (
    MIN_MODULE_MM,
    PRESETS,
    QUIET_ZONE,
    LabelError,
    LabelSpec,
    layout,
    validate,
)
from labels.spec import MIN_TEXT_MM, Box, fit_text


def overlaps(a: Box, b: Box) -> bool:
    eps = 1e-9        # boxes that only touch do not overlap
    return a.x < b.x + b.w - eps and b.x < a.x + a.w - eps and a.y < b.y + b.h - eps and b.y < a.y + a.h - eps


def test_presets_are_the_issue_sizes():
    """Are the presets 20x20, 30x30 and 40x60 mm, at 300 dpi and error correction M unless asked otherwise?"""
    assert {name: (s.width_mm, s.height_mm) for name, s in PRESETS.items()} == {
        "20x20": (20, 20), "30x30": (30, 30), "40x60": (40, 60)}
    spec = LabelSpec.preset("30x30", dpi=600, error_correction="q")
    assert (spec.dpi, spec.error_correction, spec.width_px, spec.height_px) == (600, "Q", 709, 709)
    assert LabelSpec.preset("20x20").dpi == 300


def test_custom_sizes_and_bad_values_are_checked():
    """Is a custom size accepted within 15-300 mm, and are bad sizes, resolutions, levels and presets refused?"""
    assert LabelSpec.custom(25, 50, 600).height_px == 1181
    for make, code in ((lambda: LabelSpec.custom(10, 20), "bad_size"), (lambda: LabelSpec.custom(20, 400), "bad_size"),
                       (lambda: LabelSpec.custom(20, 20, dpi=72), "bad_dpi"),
                       (lambda: LabelSpec.custom(20, 20, dpi=300.5), "bad_dpi"),
                       (lambda: LabelSpec.custom(20, 20, error_correction="H"), "bad_error_correction"),
                       (lambda: LabelSpec.preset("50x50"), "bad_preset")):
        with pytest.raises(LabelError) as err:
            make()
        assert err.value.code == code
        assert isinstance(err.value, ValueError)


def test_module_under_a_quarter_millimetre_is_refused_with_what_to_choose():
    """Is QR version 5 on a 20x20 label refused (0.235 mm modules), naming the presets that would do?"""
    assert validate(PRESETS["20x20"], 4) >= MIN_MODULE_MM
    with pytest.raises(LabelError) as err:
        validate(PRESETS["20x20"], 5)
    assert err.value.code == "module_too_small"
    assert "0.235 mm" in err.value.message and "choose the 30x30 or 40x60 preset" in err.value.message
    assert "shorter" in err.value.message


def test_error_correction_q_can_push_a_url_off_the_smallest_label():
    """Does a production-length URL that fits 20x20 at M get refused there at Q, with M suggested?"""
    from labels import url_qr_version
    url = "https://gi.cnipa.gov.cn/v/ABBSH26000001234MLXBAETLQFOZT4"
    spec_q = LabelSpec.preset("20x20", error_correction="Q")
    assert layout(PRESETS["20x20"], url_qr_version(url, "M"))
    with pytest.raises(LabelError) as err:
        layout(spec_q, url_qr_version(url, "Q"))
    assert "error correction M" in err.value.message


def test_no_preset_fits_is_said_plainly():
    """When even 40x60 is too small for the version, does the message ask for a larger custom size?"""
    with pytest.raises(LabelError) as err:
        validate(PRESETS["40x60"], 20)
    assert "larger custom size" in err.value.message


@pytest.mark.parametrize("spec", [*PRESETS.values(), LabelSpec.custom(60, 30), LabelSpec.custom(30, 100),
                                  LabelSpec.custom(25, 25), LabelSpec.custom(100, 100)], ids=lambda s: s.name)
def test_layout_keeps_everything_on_the_label_and_out_of_the_quiet_zone(spec):
    """Is every box inside the label, no two boxes overlapping, and the QR area (with quiet zone) square?"""
    lay = layout(spec, 4)
    boxes = {"qr": lay.qr_area, "artwork": lay.artwork, "name": lay.name, "uscc": lay.uscc,
             "standard": lay.standard, "serial": lay.serial}
    for name, box in boxes.items():
        assert box.x >= 0 and box.y >= 0, name
        assert box.x + box.w <= spec.width_mm + 1e-9 and box.y + box.h <= spec.height_mm + 1e-9, name
    for (a, box_a), (b, box_b) in itertools.combinations(boxes.items(), 2):
        assert not overlaps(box_a, box_b), (a, b)
    assert lay.qr_area.w == pytest.approx(lay.qr_area.h)
    assert lay.qr_area.w == pytest.approx(lay.module_mm * (lay.modules + 2 * QUIET_ZONE))
    x0, y0 = lay.symbol_origin
    assert x0 - lay.qr_area.x == pytest.approx(QUIET_ZONE * lay.module_mm)
    assert y0 - lay.qr_area.y == pytest.approx(QUIET_ZONE * lay.module_mm)


@pytest.mark.parametrize("dpi", [300, 600])
@pytest.mark.parametrize("name", PRESETS)
def test_raster_modules_are_whole_pixels_of_at_least_a_quarter_millimetre(name, dpi):
    """At print resolution, is a module a whole number of pixels and never under 0.25 mm?"""
    lay = layout(LabelSpec.preset(name, dpi), 4)
    px = lay.module_px()
    assert px * 25.4 / dpi >= MIN_MODULE_MM
    assert px * (lay.modules + 2 * QUIET_ZONE) <= lay.qr_area.w * dpi / 25.4 + lay.modules * 0.1 + 1


def test_text_shrinks_to_its_line_but_not_below_legibility(font):
    """Is long text shrunk to fit its line, and refused (text_too_long) when it would go under 1 mm?"""
    lay = layout(PRESETS["20x20"], 4)
    normal = fit_text(font, "91341600MA2N1X2Y3Z", lay.uscc, "USCC")
    longer = fit_text(font, "GB/T 19506-2009 地理标志产品", lay.standard, "standard number")
    assert longer.size < normal.size and longer.size >= MIN_TEXT_MM
    assert font.width(longer.text) * longer.size <= lay.standard.w + 1e-9
    with pytest.raises(LabelError) as err:
        fit_text(font, "国家知识产权局关于批准对某某地理标志产品实施保护的公告第三百五十四号", lay.standard, "number")
    assert err.value.code == "text_too_long" and "larger label" in err.value.message
