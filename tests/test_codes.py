"""Serials, check characters, verification codes, keyrings and QR sizes (gi_service.codes)."""
from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import random

import pytest

from gi_service.codes import (
    ALPHABET,
    PREFIX_ALPHABET,
    TAG_ALPHABET,
    CodeCheck,
    MarkKeyring,
    Serial,
    SerialError,
    _hybrid_check,
    _hybrid_step,
    check_character,
    code_url,
    display_serial,
    format_serial,
    make_code,
    max_base_url_length,
    parse_serial,
    qr_capacity,
    qr_version,
    suggest_prefix,
    verify_code,
)

KEY_A = bytes(range(32))                       # fixed test keys: never use these in production
KEY_B = bytes(range(100, 132))
RING = MarkKeyring({"A": KEY_A}, "A")


def random_serial(rng: random.Random) -> str:
    prefix = "".join(rng.choices(PREFIX_ALPHABET, k=4))
    return format_serial(prefix, rng.randint(2000, 2099), rng.randint(1, 999_999_999))


def reference_code(key: bytes, kid: str, serial: str) -> str:
    """The scheme written out the slow, obvious way, independent of the module's fast path."""
    digest = hmac.new(key, b"gi-mark-v1|" + serial.encode("ascii"), hashlib.sha256).digest()
    return kid + serial[:15] + base64.b32encode(digest).decode("ascii")[:14]


# --- MOD 37-36 -------------------------------------------------------------

def test_iso7064_published_examples():
    """Does the hybrid check agree with the published ISO 7064 examples for MOD 37,36 and MOD 11,10?"""
    assert check_character("A12425GABC1234002") == "M"
    assert _hybrid_check("A12425GABC1234002", ALPHABET) == "M"
    assert _hybrid_check("00200667308", "0123456789") == "5"


def test_check_character_refuses_other_characters():
    """Does check_character refuse characters outside 0-9A-Z instead of guessing?"""
    with pytest.raises(ValueError):
        check_character("bbsh26")
    with pytest.raises(ValueError):
        check_character("BBSH-26")


def _neighbours(a: str, b: str) -> bool:
    return (ALPHABET.index(a) - ALPHABET.index(b)) % 36 in (1, 35)


def test_which_adjacent_transpositions_pass_in_every_state():
    """Exhaustively, which swaps of neighbours pass MOD 37-36: exactly neighbouring values in one state of 36?"""
    missed, predicted = set(), set()
    for p in range(1, 37):
        for a in range(36):
            for b in range(36):
                if a == b:
                    continue
                # Two data characters a, b swapped; later steps are bijective, so equal states = missed.
                if _hybrid_step(_hybrid_step(p, a, 36), b, 36) == _hybrid_step(_hybrid_step(p, b, 36), a, 36):
                    missed.add((p, a, b))
                low = a if (b - a) % 36 == 1 else b if (a - b) % 36 == 1 else None
                if low is not None and (p + low) % 36 == 18:
                    predicted.add((p, a, b))
    assert missed == predicted
    assert len(missed) == 72            # of 36 * 36 * 35 = 45,360 (state, pair) cases: 0.16%
    # The last data character a swapped with the check character c.
    check_swaps = set()
    for p in range(1, 37):
        for a in range(36):
            c = (37 - _hybrid_step(p, a, 36)) % 36
            if c != a and (_hybrid_step(p, c, 36) + a) % 36 == 1:
                check_swaps.add((ALPHABET[a], ALPHABET[c]))
    assert check_swaps == {("0", "1"), ("1", "0")}


def test_every_single_substitution_is_caught_on_random_serials():
    """Is every one-character substitution, at every position of a few hundred random serials, refused?"""
    rng = random.Random(7064)
    for _ in range(300):
        serial = random_serial(rng)
        for pos in range(16):
            for ch in ALPHABET:
                if ch == serial[pos]:
                    continue
                typo = serial[:pos] + ch + serial[pos + 1:]
                with pytest.raises(SerialError):
                    parse_serial(typo)
                if pos < 15:
                    assert check_character(typo[:15]) != serial[15]


def test_adjacent_transpositions_on_random_serials():
    """On a few hundred random serials, is every swap of neighbours refused except rare neighbouring-value ones?"""
    rng = random.Random(3736)
    swaps, passed = 0, 0
    for _ in range(400):
        serial = random_serial(rng)
        for pos in range(15):
            if serial[pos] == serial[pos + 1]:
                continue
            swapped = serial[:pos] + serial[pos + 1] + serial[pos] + serial[pos + 2:]
            swaps += 1
            try:
                parse_serial(swapped)
            except SerialError as exc:
                assert exc.code in {"check", "charset", "year", "sequence"}
            else:
                passed += 1
                assert _neighbours(serial[pos], serial[pos + 1]), (serial, pos)
    assert swaps > 4000
    assert passed / swaps < 0.01


# --- serials ---------------------------------------------------------------

def test_serial_round_trip():
    """Do format_serial, parse_serial, display_serial and Serial agree on the same parts?"""
    rng = random.Random(1)
    for _ in range(2000):
        prefix = "".join(rng.choices(PREFIX_ALPHABET, k=4))
        year, seq = rng.randint(2000, 2099), rng.randint(1, 999_999_999)
        text = format_serial(prefix, year, seq)
        assert len(text) == 16
        parsed = parse_serial(text)
        assert (parsed.prefix, parsed.year, parsed.seq) == (prefix, year, seq)
        assert parsed == Serial(prefix, year, seq)
        assert parsed.text == text == str(parsed)
        assert parsed.series == prefix + f"{year % 100:02d}"
        assert parse_serial(display_serial(text)) == parsed


def test_serial_layout_and_display():
    """Is the serial laid out as prefix, 2-digit year, 9-digit number and check, and displayed with hyphens?"""
    s = Serial("BBSH", 2026, 1234)
    assert s.text == "BBSH26000001234E"
    assert s.series == "BBSH26"
    assert display_serial(s) == "BBSH-26-000001234-E" == display_serial("bbsh26000001234e") == s.display


@pytest.mark.parametrize("typed", [
    "bbsh26000001234e", " BBSH-26-000001234-E ", "bbsh 26 000001234 e", "BBSH–26–000001234–E",
    "ＢＢＳＨ－２６－０００００１２３４－Ｅ",
])
def test_parse_is_lenient_about_case_spaces_and_hyphens(typed):
    """Are lower case, spaces, hyphens (ASCII or typographic) and full-width input accepted?"""
    assert parse_serial(typed).text == "BBSH26000001234E"


def test_serial_lower_case_prefix_is_normalised():
    """Does Serial store an upper-case prefix when given a lower-case one?"""
    assert Serial("bbsh", 2026, 1234).prefix == "BBSH"


def test_serials_sort_by_prefix_year_and_number():
    """Do serials sort by prefix, then year, then sequence number?"""
    a, b, c = Serial("BBSH", 2025, 999), Serial("BBSH", 2026, 2), Serial("BBSH", 2026, 10)
    assert sorted([c, a, b]) == [a, b, c]


@pytest.mark.parametrize("text, code, position, words", [
    ("BBSH2600000123E", "length", None, "1 character is missing"),
    ("BBSH260000012344E", "length", None, "1 character is extra"),
    ("BOSH26000001234E", "charset", 2, "did you mean the digit 0"),
    ("BBIH26000001234E", "charset", 3, "did you mean the digit 1"),
    ("BB#H26000001234E", "charset", 3, "not allowed in the prefix"),
    ("BBSH2O000001234E", "year", 6, "did you mean 0"),
    ("BBSHX6000001234E", "year", 5, "two digits"),
    ("BBSH26000O01234E", "charset", 10, "did you mean 0"),
    ("BBSH26000001234#", "charset", 16, "check character"),
    ("BBSH26000000000E", "sequence", 7, "never issued"),
    ("BBSH26000001234K", "check", 16, "check character should be E"),
    ("BBSH26000001243E", "check", 16, "mistyped"),
])
def test_parse_errors_say_what_and_where(text, code, position, words):
    """Does each kind of mistake give its code, its 1-based position and a message saying what to fix?"""
    with pytest.raises(SerialError) as exc:
        parse_serial(text)
    assert exc.value.code == code
    assert exc.value.position == position
    assert words in str(exc.value)
    assert isinstance(exc.value, ValueError)


def test_check_character_o_is_named_as_a_letter():
    """When the expected check character is the letter O, does the message say it is a letter?"""
    rng = random.Random(5)
    while True:
        s = random_serial(rng)
        if s[15] == "O":
            break
    with pytest.raises(SerialError) as exc:
        parse_serial(s[:15] + "0")
    assert "O (the letter)" in str(exc.value)


@pytest.mark.parametrize("prefix, year, seq, code", [
    ("BBSH", 1999, 1, "year"), ("BBSH", 2100, 1, "year"), ("BBSH", 2026, 0, "sequence"),
    ("BBSH", 2026, 1_000_000_000, "sequence"), ("BBIH", 2026, 1, "charset"), ("BBS", 2026, 1, "length"),
    ("BBSH", "2026", 1, "year"), ("BBSH", 2026, True, "sequence"),
])
def test_format_serial_refuses_out_of_range_parts(prefix, year, seq, code):
    """Does format_serial refuse a bad prefix, a year outside 2000-2099 or a number outside 1-999,999,999?"""
    with pytest.raises(SerialError) as exc:
        format_serial(prefix, year, seq)
    assert exc.value.code == code
    with pytest.raises(SerialError):
        Serial(prefix, year, seq)


def test_serial_is_immutable():
    """Is a Serial frozen, so a ledger row cannot be changed through it?"""
    s = Serial("BBSH", 2026, 1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.seq = 2


# --- prefixes --------------------------------------------------------------

@pytest.mark.parametrize("name, prefix", [
    ("Bo Bai Shao", "BBSH"), ("Bó Bái Sháo", "BBSH"), ("BoBaiShao", "BBSH"),
    ("Xi Hu Long Jing", "XHLJ"), ("Wu Chang Da Mi", "WCDM"), ("Dao Kou Shao Ji", "DKSJ"),
])
def test_suggest_prefix_uses_pinyin_initials(name, prefix):
    """Is the suggested prefix made of the pinyin initials (and the h of zh/ch/sh when short)?"""
    assert suggest_prefix(name, set()) == prefix


def test_suggest_prefix_avoids_taken_and_is_deterministic():
    """When the first choice is taken, is another one chosen, the same one every time, never I or O?"""
    taken = {"BBSH"}
    first = suggest_prefix("Bo Bai Shao", taken)
    assert first != "BBSH" and first.startswith("BBS")
    assert suggest_prefix("Bo Bai Shao", set(taken)) == first
    # Fill everything that starts with BBS or BB: the answer still comes, still valid.
    many = {f"BBS{c}" for c in PREFIX_ALPHABET} | {f"BB{c}H" for c in PREFIX_ALPHABET}
    p = suggest_prefix("Bo Bai Shao", many)
    assert p not in many and len(p) == 4 and set(p) <= set(PREFIX_ALPHABET)
    assert suggest_prefix("Bo Bai Shao", {"bbsh"}) != "BBSH"


@pytest.mark.parametrize("name", ["Ou Yi", "Io", "Ya", "A", "Wuchang Rice", "9 Qu"])
def test_suggest_prefix_always_gives_a_usable_prefix(name):
    """Does even a short name, or one full of I and O, give 4 characters that format_serial accepts?"""
    p = suggest_prefix(name, set())
    assert format_serial(p, 2026, 1)[:4] == p


def test_suggest_prefix_needs_latin_letters():
    """Is a name with only Chinese characters refused with a hint to pass pinyin?"""
    with pytest.raises(ValueError, match="pinyin"):
        suggest_prefix("亳白芍", set())


# --- keyrings --------------------------------------------------------------

def test_keyring_setting_round_trip():
    """Does a keyring written as a setting read back to the same keys, making the same codes?"""
    ring = MarkKeyring({"A": KEY_A, "B": KEY_B}, "B")
    text = ring.setting_text()
    assert text.startswith("A:") and ",B:" in text and "=" not in text
    again = MarkKeyring.from_setting(text, "B")
    assert again.key_ids == ("A", "B") and again.active == "B"
    assert make_code(again, "BBSH26000001234E") == make_code(ring, "BBSH26000001234E")
    padded = " A:" + base64.urlsafe_b64encode(KEY_A).decode() + " , B:" + base64.b64encode(KEY_B).decode()
    assert MarkKeyring.from_setting(padded, "A").setting_text() == text


def test_generate_makes_fresh_random_keys():
    """Does generate() give a working keyring and setting, with a different key each time?"""
    ring, text = MarkKeyring.generate("C")
    assert ring.key_ids == ("C",) and ring.active == "C"
    assert MarkKeyring.from_setting(text, "C").setting_text() == text
    assert MarkKeyring.generate("C")[1] != text
    code = make_code(ring, "BBSH26000001234E")
    assert code[0] == "C" and verify_code(ring, code).status == "valid"


def test_keyring_repr_shows_no_key_material():
    """Does the keyring's repr name the key ids but never the keys?"""
    ring = MarkKeyring({"A": KEY_A}, "A")
    assert "A" in repr(ring)
    assert base64.urlsafe_b64encode(KEY_A).decode()[:10] not in repr(ring)


@pytest.mark.parametrize("text, active, words", [
    ("", "A", "empty"),
    ("A" + base64.urlsafe_b64encode(KEY_A).decode(), "A", "no ':'"),
    ("a:" + base64.urlsafe_b64encode(KEY_A).decode(), "a", "one upper-case letter"),
    ("AB:" + base64.urlsafe_b64encode(KEY_A).decode(), "A", "one upper-case letter"),
    ("A:" + base64.urlsafe_b64encode(KEY_A[:31]).decode(), "A", "31 bytes"),
    ("A:not base64!", "A", "not valid base64url"),
    ("A:" + base64.urlsafe_b64encode(KEY_A).decode() + ",A:" + base64.urlsafe_b64encode(KEY_B).decode(), "A",
     "appears twice"),
    ("A:" + base64.urlsafe_b64encode(KEY_A).decode() + ",", "A", "entry 2 is empty"),
    ("A:" + base64.urlsafe_b64encode(KEY_A).decode(), "B", "not in the setting"),
])
def test_bad_settings_are_refused_clearly(text, active, words):
    """Is each kind of bad key setting refused with a message naming the problem and no key material?"""
    with pytest.raises(ValueError) as exc:
        MarkKeyring.from_setting(text, active)
    assert words in str(exc.value)
    assert base64.urlsafe_b64encode(KEY_A).decode()[:12] not in str(exc.value)


@pytest.mark.parametrize("keys, active", [
    ({}, "A"), ({"A": b"short"}, "A"), ({"1": KEY_A}, "1"), ({"A": KEY_A}, "B"), ({"A": "text"}, "A"),
])
def test_bad_keyrings_are_refused(keys, active):
    """Are empty keyrings, short or non-bytes keys, bad key ids and a missing active key refused?"""
    with pytest.raises((ValueError, TypeError)):
        MarkKeyring(keys, active)


# --- codes -----------------------------------------------------------------

KNOWN_ANSWERS = [
    # (key, kid, serial, code): pinned so the scheme cannot drift silently.
    (KEY_A, "A", "BBSH26000001234E", "ABBSH26000001234MLXBAETLQFOZT4"),
    (KEY_A, "A", "XHLJ25000000001I", "AXHLJ25000000001WVVKVSIYVHOZVL"),
    (KEY_A, "A", "WCDM999999999994", "AWCDM99999999999PRZOAIFD4I3JI7"),
    (bytes(range(100)), "K", "BBSH26000001234E", "KBBSH26000001234JQOF4AE4R4CCAT"),
]


@pytest.mark.parametrize("key, kid, serial, code", KNOWN_ANSWERS)
def test_known_answers(key, kid, serial, code):
    """Does a fixed key and serial still give the pinned code, equal to the obvious HMAC-then-base32 computation?"""
    ring = MarkKeyring({kid: key}, kid)
    assert make_code(ring, serial) == code
    assert reference_code(key, kid, serial) == code
    result = verify_code(ring, code)
    assert result == CodeCheck("valid", parse_serial(serial), kid, result.reason)


def test_codes_match_the_reference_on_random_serials():
    """Does the fast code path equal the plain hmac.new + base64.b32encode computation on random serials?"""
    rng = random.Random(11)
    for _ in range(2000):
        serial = random_serial(rng)
        code = make_code(RING, serial)
        assert code == reference_code(KEY_A, "A", serial)
        assert len(code) == 30 and set(code) <= set(ALPHABET) and set(code[16:]) <= set(TAG_ALPHABET)
        assert verify_code(RING, code).serial == parse_serial(serial)


def test_make_code_accepts_a_serial_object_or_text():
    """Does make_code give the same code for a Serial, its text and its display form?"""
    s = Serial("BBSH", 2026, 1234)
    assert make_code(RING, s) == make_code(RING, "BBSH26000001234E") == make_code(RING, "bbsh-26-000001234-e")
    with pytest.raises(SerialError):
        make_code(RING, "BBSH26000001234K")
    with pytest.raises(ValueError, match="not in the keyring"):
        make_code(RING, s, kid="Z")


def test_verify_accepts_lower_case_and_whitespace():
    """Is a valid code typed in lower case with surrounding whitespace still valid?"""
    code = make_code(RING, "BBSH26000001234E")
    result = verify_code(RING, f"  {code.lower()}\n")
    assert result.status == "valid" and result.valid
    assert result.serial.text == "BBSH26000001234E" and result.kid == "A"


def test_any_single_character_change_is_not_valid():
    """Does altering any one character of valid codes give 'forged' or 'malformed', never 'valid'?"""
    rng = random.Random(99)
    ring = MarkKeyring({"A": KEY_A, "B": KEY_B}, "A")
    for _ in range(30):
        code = make_code(ring, random_serial(rng))
        for pos in range(30):
            for ch in ALPHABET:
                if ch == code[pos]:
                    continue
                result = verify_code(ring, code[:pos] + ch + code[pos + 1:])
                assert result.status in {"forged", "malformed"}, (code, pos, ch)
                assert result.serial is None


def test_unknown_kid_is_forged():
    """Is a well-formed code under a key id the keyring does not hold reported as forged, naming the id?"""
    other = MarkKeyring({"Q": KEY_B}, "Q")
    code = make_code(other, "BBSH26000001234E")
    result = verify_code(RING, code)
    assert result.status == "forged" and result.kid == "Q" and result.serial is None
    assert "unknown key id Q" in result.reason


def test_same_kid_different_key_is_forged():
    """Is a code made with another key under the same key id forged?"""
    code = make_code(MarkKeyring({"A": KEY_B}, "A"), "BBSH26000001234E")
    result = verify_code(RING, code)
    assert result.status == "forged" and "does not match" in result.reason


def test_key_rotation_keeps_old_codes_valid():
    """After key B becomes active, do codes made with A still verify, and new codes use B?"""
    old = make_code(RING, "BBSH26000001234E")
    rotated = MarkKeyring({"A": KEY_A, "B": KEY_B}, "B")
    new = make_code(rotated, "BBSH26000001234E")
    assert old[0] == "A" and new[0] == "B" and old[1:16] == new[1:16] and old != new
    assert verify_code(rotated, old).status == "valid"
    assert verify_code(rotated, new).status == "valid"
    assert verify_code(MarkKeyring({"B": KEY_B}, "B"), old).status == "forged"   # A removed: revoked


def test_rotated_adds_a_fresh_active_key():
    """Does rotated() keep the old keys, add a new one as active and refuse a used id?"""
    ring, text = RING.rotated("B")
    assert ring.key_ids == ("A", "B") and ring.active == "B"
    assert verify_code(ring, make_code(RING, "BBSH26000001234E")).status == "valid"
    assert MarkKeyring.from_setting(text, "B").key_ids == ("A", "B")
    with pytest.raises(ValueError):
        RING.rotated("A")


@pytest.mark.parametrize("code, words", [
    ("", "30 characters"),
    ("ABBSH26000001234MLXBAETLQFOZT", "30 characters"),
    ("ABBSH26000001234MLXBAETLQFOZT44", "30 characters"),
    ("1BBSH26000001234MLXBAETLQFOZT4", "position 1"),
    ("ABOSH26000001234MLXBAETLQFOZT4", "position 3"),
    ("ABBSH2600000123XMLXBAETLQFOZT4", "position 16"),
    ("ABBSH26000001234MLXBAETLQFOZT1", "position 30"),
    ("ABBSH26000000000MLXBAETLQFOZT4", "never issued"),
    ("ABBSH26000001234MLXBAETLQFOZT\u0130", "position 30"),
    ("ABBSH-26-000001234MLXBAETLQFOZT4", "30 characters"),
    (None, "text"),
])
def test_malformed_codes(code, words):
    """Is a string not shaped like a code reported as malformed, with a reason saying what is wrong?"""
    result = verify_code(RING, code)
    assert result.status == "malformed" and result.serial is None and result.kid is None
    assert words in result.reason


def test_non_ascii_lookalikes_are_malformed():
    """Is a code with a non-ASCII letter that upper-cases to ASCII (dotless i -> I) malformed, not accepted?"""
    code = make_code(RING, "BBSH26000001234E")
    assert "\u0131".upper() == "I"
    assert verify_code(RING, code[:-1] + "\u0131").status == "malformed"


@pytest.mark.heavy   # fuzzing: a million codes (heavy tier, see pyproject.toml)
def test_random_well_formed_codes_never_verify():
    """Of 1,000,000 random well-formed codes under held key ids, are none valid (expected 1e6 * 2^-70)?"""
    n = 1_000_000
    rng = random.Random(20260601)
    ring = MarkKeyring({"A": KEY_A, "B": KEY_B}, "B")
    kids = "".join(rng.choices("AB", k=n))
    prefixes = "".join(rng.choices(PREFIX_ALPHABET, k=4 * n))
    digits = "".join(rng.choices("0123456789", k=11 * n))
    tags = base64.b32encode(rng.randbytes(14 * 5 * n // 8)).decode("ascii")
    counts = {"valid": 0, "forged": 0, "malformed": 0}
    for i in range(n):
        code = kids[i] + prefixes[4 * i:4 * i + 4] + digits[11 * i:11 * i + 11] + tags[14 * i:14 * i + 14]
        counts[verify_code(ring, code).status] += 1
    assert counts == {"valid": 0, "forged": n, "malformed": 0}


def test_code_check_is_immutable():
    """Is a CodeCheck frozen, so a handler cannot turn 'forged' into 'valid' by accident?"""
    result = verify_code(RING, make_code(RING, "BBSH26000001234E"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.status = "forged"


# --- URLs and QR size ------------------------------------------------------

def test_code_url_joins_base_and_code():
    """Does code_url put the code under /v/ whether or not the base URL ends with a slash?"""
    assert code_url("https://gi.cnipa.gov.cn/", "ABC") == "https://gi.cnipa.gov.cn/v/ABC"
    assert code_url("https://gi.cnipa.gov.cn", "ABC") == "https://gi.cnipa.gov.cn/v/ABC"


def test_capacity_table_matches_the_published_figures():
    """Do the derived capacities equal the ISO/IEC 18004 capacity table (versions 1-10, M and L)?"""
    assert [qr_capacity(v, "M", "byte") for v in range(1, 11)] == [14, 26, 42, 62, 84, 106, 122, 152, 180, 213]
    assert [qr_capacity(v, "M", "alphanumeric") for v in range(1, 11)] == [
        20, 38, 61, 90, 122, 154, 178, 221, 262, 311]
    assert [qr_capacity(v, "L", "byte") for v in range(1, 11)] == [17, 32, 53, 78, 106, 134, 154, 192, 230, 271]
    assert [qr_capacity(v, "H", "byte") for v in (1, 5, 10)] == [7, 44, 119]
    assert [qr_capacity(v, "Q", "alphanumeric") for v in (1, 5, 10)] == [16, 87, 221]


def test_realistic_base_url_fits_version_5():
    """Does a code URL under https://gi.cnipa.gov.cn fit QR version 5 or lower at error correction M?"""
    code = make_code(RING, "BBSH26000001234E")
    assert qr_version(code_url("https://gi.cnipa.gov.cn", code), "M") <= 5


def test_longest_allowed_base_url_fits_version_5():
    """Does the longest base URL max_base_url_length allows fit version 5 at M, and one byte more not?"""
    n = max_base_url_length("M", 5)
    assert n == 51
    code = make_code(RING, "BBSH26000001234E")
    base = "https://" + "g" * (n - len("https://"))
    assert qr_version(code_url(base, code), "M") == 5
    assert qr_version(code_url(base + "x", code), "M") == 6


def test_alphanumeric_mode_is_used_when_possible():
    """Is an all-upper-case URL sized in alphanumeric mode (smaller) and a lower-case one in byte mode?"""
    code = make_code(RING, "BBSH26000001234E")
    upper = code_url("HTTPS://GI.CNIPA.GOV.CN", code).replace("/v/", "/V/")
    lower = code_url("https://gi.cnipa.gov.cn", code)
    assert qr_version(upper, "M") < qr_version(lower, "M")
    assert qr_version("A" * 20, "M") == 1 and qr_version("A" * 21, "M") == 2


def test_qr_version_refusals():
    """Are an unknown error-correction level and a URL too long for version 10 refused?"""
    with pytest.raises(ValueError):
        qr_version("https://x", "X")
    with pytest.raises(ValueError, match="version 10"):
        qr_version("h" * 300, "M")
    with pytest.raises(ValueError):
        max_base_url_length("M", 11)


def test_qr_version_agrees_with_the_qrcode_package():
    """Does qr_version choose the same version as the qrcode package for single-segment URLs?"""
    import qrcode
    from qrcode.util import MODE_8BIT_BYTE, MODE_ALPHA_NUM, QRData

    levels = {"L": qrcode.constants.ERROR_CORRECT_L, "M": qrcode.constants.ERROR_CORRECT_M,
              "Q": qrcode.constants.ERROR_CORRECT_Q, "H": qrcode.constants.ERROR_CORRECT_H}
    code = make_code(RING, "BBSH26000001234E")
    urls = [code_url("https://" + "g" * n + ".cn", code) for n in range(0, 60, 3)]
    urls += [u.upper() for u in urls]
    for url in urls:
        mode = MODE_ALPHA_NUM if url == url.upper() else MODE_8BIT_BYTE
        for level, constant in levels.items():
            try:
                ours = qr_version(url, level)
            except ValueError:
                continue
            qr = qrcode.QRCode(version=None, error_correction=constant)
            qr.add_data(QRData(url.encode() if mode == MODE_8BIT_BYTE else url, mode=mode))
            qr.make(fit=True)
            assert qr.version == ours, (url, level)


# --- HMAC-SM3 keys (China's commercial cryptography) ---------------------------------------------

def sm3_reference_code(key: bytes, kid: str, serial: str) -> str:
    """HMAC-SM3 written out with the `cryptography` package (OpenSSL 3), independent of the fast path."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives import hmac as chmac

    mac = chmac.HMAC(key, hashes.SM3())
    mac.update(b"gi-mark-v1|" + serial.encode("ascii"))
    return kid + serial[:15] + base64.b32encode(mac.finalize()).decode("ascii")[:14]


def test_sm3_of_the_published_vectors():
    """Is the SM3 our HMAC pads are built on the standard's (GB/T 32905 vectors: 'abc' and 'abcd' x 16)?"""
    assert hashlib.new("sm3", b"abc").hexdigest() == \
        "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
    assert hashlib.new("sm3", b"abcd" * 16).hexdigest() == \
        "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"


def test_hmac_sm3_codes_match_the_reference_on_random_serials():
    """Does a key of suite hmac-sm3 make the codes HMAC-SM3 (by cryptography's HMAC) gives, and verify them?"""
    ring = MarkKeyring({"S": KEY_A}, "S", {"S": "hmac-sm3"})
    rng = random.Random(12)
    for _ in range(500):
        serial = random_serial(rng)
        code = make_code(ring, serial)
        assert code == sm3_reference_code(KEY_A, "S", serial)
        assert verify_code(ring, code).valid
    assert make_code(ring, serial) != reference_code(KEY_A, "S", serial)     # not the SHA-256 tag


def test_codes_printed_before_a_switch_of_suite_stay_verifiable():
    """After rotating to an HMAC-SM3 key, do codes made with the old HMAC-SHA-256 key still verify (the key id in
    each code names its suite), do new codes use SM3, and does the setting text carry the suite both ways?"""
    old = MarkKeyring({"A": KEY_A}, "A")
    serial = format_serial("BBSH", 2026, 42)
    printed = make_code(old, serial)
    new, text = old.rotated("S", "hmac-sm3")
    assert text.startswith("A:") and ",S:hmac-sm3:" in text
    parsed = MarkKeyring.from_setting(text, "S")
    assert parsed.suite_of("A") == "hmac-sha256" and parsed.suite_of("S") == "hmac-sm3"
    assert verify_code(parsed, printed).valid
    fresh = make_code(parsed, serial)
    assert fresh[0] == "S" and verify_code(parsed, fresh).valid and verify_code(old, fresh).status == "forged"


def test_an_unknown_suite_is_refused_with_its_name():
    """Is a setting entry naming an unknown MAC suite refused, saying which suites exist?"""
    with pytest.raises(ValueError, match="unknown MAC suite 'hmac-md5'.*hmac-sm3"):
        MarkKeyring.from_setting("A:hmac-md5:" + base64.urlsafe_b64encode(KEY_A).decode().rstrip("="), "A")
