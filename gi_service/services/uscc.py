"""Unified social credit code (统一社会信用代码) validation per GB 32100-2015.

An 18-character code: registering department (1), organisation type (1),
administrative division (6), organisation code per GB 11714 (8 + its check
character), and a final check character over the first 17. Errors name the
1-based position so a clerk can find the mistyped character.
"""
from __future__ import annotations

from dataclasses import dataclass

from geodata.admin import get_registry

from ..errors import InvalidUSCC

CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # I, O, Z, S and V are never used
VALUES = {c: i for i, c in enumerate(CHARSET)}
WEIGHTS = [pow(3, i, 31) for i in range(17)]
ORG_WEIGHTS = [3, 7, 9, 10, 5, 8, 4, 2]

# Registering department -> allowed organisation-type characters (GB 32100-2015 Table 1).
DEPARTMENT_TYPES = {
    "1": "1239", "2": "19", "3": "1234569", "4": "19", "5": "1239", "6": "129", "7": "129",
    "8": "19", "9": "123", "A": "19", "N": "1239", "Y": "1",
}
DEPARTMENT_NAMES = {
    "1": "机构编制", "2": "外交", "3": "司法行政", "4": "文化", "5": "民政", "6": "旅游", "7": "宗教",
    "8": "工会", "9": "市场监管(工商)", "A": "中央军委改革和编制办公室", "N": "农业", "Y": "其他",
}


@dataclass(frozen=True)
class USCC:
    code: str
    department: str
    org_type: str
    adcode: str
    organisation_code: str


def check_character(first17: str) -> str:
    """The 18th character for a 17-character prefix."""
    total = sum(VALUES[c] * w for c, w in zip(first17, WEIGHTS))
    return CHARSET[(31 - total % 31) % 31]


def organisation_code_check(body8: str) -> str:
    """GB 11714 check character for the 8-character organisation code body."""
    total = sum(int(c, 36) * w for c, w in zip(body8, ORG_WEIGHTS))
    value = 11 - total % 11
    return {10: "X", 11: "0"}.get(value, str(value))


def _fail(position: int, message: str, **details) -> InvalidUSCC:
    return InvalidUSCC(f"USCC position {position}: {message}", details={"position": position, **details})


def validate_uscc(raw: str) -> USCC:
    """Validate a USCC and return its parts, or raise InvalidUSCC naming the bad position."""
    if not isinstance(raw, str):
        raise InvalidUSCC("USCC must be a string of 18 characters", details={"position": None})
    code = raw.strip().upper()
    if len(code) != 18:
        raise InvalidUSCC(f"USCC must have 18 characters, got {len(code)}",
                          details={"position": None, "length": len(code)})
    for i, c in enumerate(code, start=1):
        if c not in VALUES:
            hint = " (I, O, Z, S and V are never used)" if c in "IOZSV" else ""
            raise _fail(i, f"character {c!r} is not allowed{hint}", character=c)
    dept, org_type = code[0], code[1]
    if dept not in DEPARTMENT_TYPES:
        raise _fail(1, f"{dept!r} is not a registering-department code", allowed=sorted(DEPARTMENT_TYPES))
    if org_type not in DEPARTMENT_TYPES[dept]:
        raise _fail(2, f"{org_type!r} is not an organisation type of department {dept} "
                       f"({DEPARTMENT_NAMES[dept]}); expected one of {', '.join(DEPARTMENT_TYPES[dept])}",
                    allowed=list(DEPARTMENT_TYPES[dept]))
    adcode = code[2:8]
    if not adcode.isdigit():
        bad = next(i for i, c in enumerate(adcode, start=3) if not c.isdigit())
        raise _fail(bad, "the administrative division code (positions 3-8) must be digits")
    registry = get_registry()
    province = adcode[:2] + "0000"
    if registry.get(province) is None:
        raise _fail(3, f"{adcode[:2]!r} is not a province-level division code", adcode=adcode)
    expected = check_character(code[:17])
    if code[17] != expected:
        raise _fail(18, f"check character should be {expected!r}, not {code[17]!r}; "
                        "a character before it is probably mistyped", expected=expected)
    org_code = code[8:17]
    org_expected = organisation_code_check(org_code[:8])
    if org_code[8] != org_expected:
        raise _fail(17, f"organisation code {org_code} has check character {org_code[8]!r}, "
                        f"expected {org_expected!r}", expected=org_expected)
    return USCC(code=code, department=dept, org_type=org_type, adcode=adcode, organisation_code=org_code)


def make_uscc(department: str, org_type: str, adcode: str, org_body8: str) -> str:
    """Build a valid USCC from its parts (for demo data and tests)."""
    first17 = department + org_type + adcode + org_body8 + organisation_code_check(org_body8)
    return first17 + check_character(first17)
