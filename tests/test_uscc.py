"""USCC validation per GB 32100-2015, with the position of the error."""
from __future__ import annotations

import pytest

from gi_service.errors import InvalidUSCC
from gi_service.services.uscc import check_character, make_uscc, organisation_code_check, validate_uscc


@pytest.mark.parametrize("code", ["91350100M000100Y43", "91110000802100433B", "91440300708461136T"])
def test_published_codes_are_valid(code):
    """Are real, published USCCs accepted and split into their parts?"""
    info = validate_uscc(code)
    assert info.adcode == code[2:8]
    assert info.organisation_code == code[8:17]


def test_lower_case_and_spaces_are_normalised():
    """Is a code typed in lower case with surrounding spaces accepted as the canonical code?"""
    assert validate_uscc(" 91350100m000100y43 ").code == "91350100M000100Y43"


@pytest.mark.parametrize("code, position", [
    ("91350100M000100Y44", 18),        # wrong final check character
    ("91350100M000100I43", 16),        # I is never used
    ("91350100M0O0100Y43", 11),        # O is never used
    ("B1350100M000100Y43", 1),         # no such registering department
    ("95350100M000100Y43", 2),         # 工商 has no type 5
    ("91990100M000100Y43", 3),         # no province 99
    ("9135A100M000100Y43", 5),         # admin code must be digits
])
def test_errors_name_the_position(code, position):
    """Does each kind of mistake name the 1-based position to look at?"""
    with pytest.raises(InvalidUSCC) as exc:
        validate_uscc(code)
    assert exc.value.details["position"] == position
    assert f"position {position}" in exc.value.message


def test_wrong_length_is_refused():
    """Is a code of the wrong length refused with its length?"""
    with pytest.raises(InvalidUSCC) as exc:
        validate_uscc("9135010")
    assert exc.value.details["length"] == 7


def test_organisation_code_check_character_is_verified():
    """Is a code whose embedded organisation code (GB 11714) is inconsistent refused at position 17?"""
    body = "MA2N0B01"
    bad_org_check = "0" if organisation_code_check(body) != "0" else "1"
    first17 = "93341602" + body + bad_org_check
    code = first17 + check_character(first17)
    with pytest.raises(InvalidUSCC) as exc:
        validate_uscc(code)
    assert exc.value.details["position"] == 17


def test_made_codes_validate():
    """Do codes built by make_uscc (demo data, tests) pass validation?"""
    for adcode in ("341602", "330106", "230184"):
        assert validate_uscc(make_uscc("9", "3", adcode, "MA2X0001")).adcode == adcode
