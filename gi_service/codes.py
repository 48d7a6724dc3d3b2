"""Serial numbers and verification codes for GI special-mark labels.

Pure Python (standard library only): no web framework, no database. The
ledger stores serials; the QR on each label carries a verification code that
only the holder of the mark keys can make.

Serial (human-readable, printed on the label)
---------------------------------------------
``{prefix}{yy}{seq}{check}``, 16 characters, e.g. ``BBSH26000001234E``,
displayed as ``BBSH-26-000001234-E``.

============  =====  ========================================================
part          chars  rule
============  =====  ========================================================
``prefix``    1-4    assigned per GI, unique; ``0-9A-Z`` without ``I`` and
                     ``O`` (they read as 1 and 0); see ``suggest_prefix``
``yy``        5-6    two digits of the year, 2000-2099
``seq``       7-15   decimal, zero-padded, 1 ... 999,999,999 per *series*
``check``     16     ISO/IEC 7064 MOD 37-36 (hybrid system) over chars 1-15
============  =====  ========================================================

The *series* is ``prefix + yy`` (6 characters): one series per GI per year.

MOD 37-36 works over the 36 characters ``0-9A-Z`` with values 0-35::

    p = 36
    for each character with value a:   s = (p + a) mod 36, or 36 if that is 0
                                       p = (2 * s) mod 37
    check value c = (37 - p) mod 36    (so that one more step lands on s = 1)

Every single-character substitution is caught. Swaps of two neighbouring
characters are caught with one narrow exception, which ISO/IEC 7064 admits for
its hybrid systems ("all or nearly all transpositions"): two characters whose
values are neighbours (``1``/``2``, ``8``/``9``, ``9``/``A``, ``A``/``B``,
``Z``/``0``, ...) swapped where the running state p before the pair satisfies
(p + smaller value) mod 36 = 18, i.e. in 1 of the 36 states. On random serials
about 0.4% of adjacent swaps (0.6% of swaps inside the number) pass the check;
a swap of the last digit with the check character passes only for ``0``/``1``.
The check character may be any of ``0-9A-Z``, including ``I`` and ``O``; only
the prefix avoids those letters.

``parse_serial`` accepts lower case, spaces and hyphens (and full-width
characters typed with a Chinese input method) and raises ``SerialError`` whose
``code`` is ``length``, ``charset``, ``year``, ``sequence`` or ``check`` and
whose ``position`` is 1-based in the 16-character serial.

Verification code (in the QR; not guessable)
--------------------------------------------
``{kid}{serial15}{tag}``, 30 characters from ``0-9A-Z`` (upper case only, so
the code itself fits the QR alphanumeric mode). Example: with key id ``A``
and the test key bytes 0x00..0x1F, serial ``BBSH26000001234E`` gives
``ABBSH26000001234MLXBAETLQFOZT4`` (a known-answer test pins it).

============  =====  ========================================================
part          chars  rule
============  =====  ========================================================
``kid``       1      key id, one letter ``A-Z``
``serial15``  2-16   the serial without its check character
``tag``       17-30  first 70 bits of HMAC-SHA256(key[kid],
                     ``b"gi-mark-v1|" + serial16``) in the RFC 4648 base32
                     alphabet ``A-Z2-7``, 14 characters, no padding
============  =====  ========================================================

``serial16`` is the full 16-character serial (ASCII) including its check
character; the check character is recomputed, not carried in the code.

Guessing bound: without the key (HMAC-SHA256 taken as a pseudo-random
function) every 70-bit tag is equally likely, so one guessed code for a given
valid serial is accepted with probability 2^-70 (about 8.5e-22). If N marks
have been issued and the guesser may hit any of them, one guess succeeds with
probability at most N * 2^-70, and G guesses with at most G * N * 2^-70: for a
billion issued marks (N = 10^9, about 2^30) that is about 8.5e-13 per guess,
and still below 1e-3 after a billion guesses -- far below the 1 in 10,000
per guess that EU medicine and tobacco rules ask for.

``verify_code`` answers ``valid`` (the tag matches), ``forged`` (shaped like a
code, but the key id is unknown or the tag does not match) or ``malformed``
(wrong length, characters or structure). It says nothing about the ledger:
whether the serial was issued, activated or voided is the caller's question.

Keys and rotation: the keyring is configured as ``"A:<base64url>,B:<...>"``
(each key at least 32 random bytes) with one *active* key id used for new
codes. Codes made with an older key keep verifying as long as its key id stays
in the keyring; remove a key id only to revoke every code made with it.

QR size
-------
The QR holds ``code_url(base_url, code)`` = ``{base_url}/v/{code}``.
``qr_version`` gives the smallest QR version (1-10) for a URL in one segment:
alphanumeric mode if every character is in the QR alphanumeric set (``0-9``,
``A-Z``, space and ``$%*+-./:``), else byte mode. With error correction M and
version 5 (37x37 modules) the base URL may be at most
``max_base_url_length("M", 5)`` = 51 bytes; ``https://gi.cnipa.gov.cn`` (23)
gives version 4.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import itertools
import re
import secrets
import unicodedata
from dataclasses import dataclass, field

__all__ = [
    "ALPHABET",
    "CODE_LENGTH",
    "PREFIX_ALPHABET",
    "SERIAL_LENGTH",
    "TAG_ALPHABET",
    "TAG_BITS",
    "CodeCheck",
    "MarkKeyring",
    "Serial",
    "SerialError",
    "check_character",
    "code_url",
    "display_serial",
    "format_serial",
    "make_code",
    "max_base_url_length",
    "parse_serial",
    "qr_capacity",
    "qr_version",
    "suggest_prefix",
    "verify_code",
]

# ---------------------------------------------------------------------------
# Alphabets and sizes
# ---------------------------------------------------------------------------

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"          # MOD 37-36 values 0..35
PREFIX_ALPHABET = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ"     # no I, no O (34 characters)
TAG_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"          # RFC 4648 base32
KID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

PREFIX_LENGTH = 4
SERIES_LENGTH = 6
SERIAL_LENGTH = 16
CODE_LENGTH = 30
TAG_LENGTH = 14
TAG_BITS = 70
MAX_SEQ = 999_999_999
MIN_KEY_BYTES = 32
MAC_DOMAIN = b"gi-mark-v1|"
CODE_PATH = "/v/"

_VALUE = {c: i for i, c in enumerate(ALPHABET)}
_PREFIX_SET = frozenset(PREFIX_ALPHABET)
_DIGITS = frozenset("0123456789")


# ---------------------------------------------------------------------------
# ISO/IEC 7064 MOD 37-36
# ---------------------------------------------------------------------------

def _hybrid_step(p: int, value: int, modulus: int) -> int:
    s = (p + value) % modulus or modulus
    return (2 * s) % (modulus + 1)


def _hybrid_check(text: str, alphabet: str) -> str:
    """ISO/IEC 7064 hybrid MOD (M+1, M) check character over ``alphabet`` (M = its size)."""
    m = len(alphabet)
    p = m
    for ch in text:
        p = _hybrid_step(p, alphabet.index(ch), m)
    return alphabet[(m + 1 - p) % m]


# Transition table for the hot path: _STEP[p][character] -> next p (p in 1..36).
_STEP: list[dict[str, int]] = [{}] + [
    {c: _hybrid_step(p, v, 36) for c, v in _VALUE.items()} for p in range(1, 37)
]


def _check_fast(body: str) -> str:
    """MOD 37-36 check character of an upper-case ``0-9A-Z`` string (no validation)."""
    p = 36
    step = _STEP
    for ch in body:
        p = step[p][ch]
    return ALPHABET[(37 - p) % 36]


def check_character(body: str) -> str:
    """The ISO/IEC 7064 MOD 37-36 check character for a string over ``0-9A-Z``."""
    if not isinstance(body, str) or any(c not in _VALUE for c in body):
        raise ValueError("MOD 37-36 works on the characters 0-9 and A-Z (upper case) only")
    return _check_fast(body)


# ---------------------------------------------------------------------------
# Serials
# ---------------------------------------------------------------------------

class SerialError(ValueError):
    """A serial that cannot be right; ``code`` says what kind, ``position`` where (1-based)."""

    def __init__(self, message: str, code: str, position: int | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.position = position


_setattr = object.__setattr__


@dataclass(frozen=True, order=True, slots=True)
class Serial:
    """A valid serial: GI prefix, full year (2000-2099) and sequence number (1-999,999,999)."""

    prefix: str
    year: int
    seq: int
    _text: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        text = format_serial(self.prefix, self.year, self.seq)
        _setattr(self, "prefix", text[:PREFIX_LENGTH])      # normalised to upper case
        _setattr(self, "_text", text)

    @classmethod
    def _trusted(cls, prefix: str, year: int, seq: int, text: str) -> Serial:
        # For parts already validated (parse_serial, verify_code): skips re-validation.
        self = object.__new__(cls)
        _setattr(self, "prefix", prefix)
        _setattr(self, "year", year)
        _setattr(self, "seq", seq)
        _setattr(self, "_text", text)
        return self

    @property
    def series(self) -> str:
        """``prefix + yy``: the 6-character series the sequence number counts within."""
        return self._text[:SERIES_LENGTH]

    @property
    def text(self) -> str:
        """The canonical 16-character serial, check character included."""
        return self._text

    @property
    def display(self) -> str:
        """The serial grouped for people: ``BBSH-26-000001234-K``."""
        t = self._text
        return f"{t[:4]}-{t[4:6]}-{t[6:15]}-{t[15]}"

    def __str__(self) -> str:
        return self._text


def _validate_prefix(prefix: object) -> str:
    if not isinstance(prefix, str) or len(prefix) != PREFIX_LENGTH:
        raise SerialError(f"prefix must be {PREFIX_LENGTH} characters, got {prefix!r}", "length")
    prefix = prefix.upper()
    for i, ch in enumerate(prefix, start=1):
        if ch not in _PREFIX_SET:
            raise SerialError(f"position {i}: {_prefix_hint(ch)}", "charset", i)
    return prefix


def format_serial(prefix: str, year: int, seq: int) -> str:
    """The 16-character serial for a GI prefix, a year (2000-2099) and a sequence number."""
    prefix = _validate_prefix(prefix)
    if isinstance(year, bool) or not isinstance(year, int) or not 2000 <= year <= 2099:
        raise SerialError(f"year must be 2000-2099, got {year!r}", "year", 5)
    if isinstance(seq, bool) or not isinstance(seq, int) or not 1 <= seq <= MAX_SEQ:
        raise SerialError(f"sequence number must be 1-{MAX_SEQ:,}, got {seq!r}", "sequence", 7)
    body = f"{prefix}{year - 2000:02d}{seq:09d}"
    return body + _check_fast(body)


def display_serial(serial: str | Serial) -> str:
    """``BBSH-26-000001234-K``: the serial grouped as prefix, year, number and check character."""
    if not isinstance(serial, Serial):
        serial = parse_serial(serial)
    return serial.display


# Characters people type for a hyphen or a space, besides the ASCII ones (after NFKC).
_SEPARATORS = str.maketrans("", "", " -\t\r\n\u00a0\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u30fc\u3000")


def _normalise(text: str) -> str:
    # NFKC turns full-width letters and digits (ＢＢＳＨ２６) into ASCII.
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
    return text.translate(_SEPARATORS).upper()


def _show(ch: str) -> str:
    return repr(ch) if ch.isprintable() else f"U+{ord(ch):04X}"


def _prefix_hint(ch: str) -> str:
    if ch == "I":
        return "the letter I is never used in a prefix; did you mean the digit 1?"
    if ch == "O":
        return "the letter O is never used in a prefix; did you mean the digit 0?"
    return f"{_show(ch)} is not allowed in the prefix (digits and letters A-Z except I and O)"


def _digit_hint(ch: str) -> str:
    lookalike = {"O": "0", "D": "0", "Q": "0", "I": "1", "L": "1", "Z": "2", "S": "5", "G": "6", "B": "8"}
    hint = f"; did you mean {lookalike[ch]}?" if ch in lookalike else ""
    return f"{_show(ch)} should be a digit{hint}"


def parse_serial(text: str) -> Serial:
    """Parse a typed serial (any case, with spaces or hyphens) or raise SerialError saying what to fix."""
    if not isinstance(text, str):
        raise SerialError(f"a serial is text, got {type(text).__name__}", "charset")
    s = _normalise(text)
    if len(s) != SERIAL_LENGTH:
        what = "is missing" if len(s) < SERIAL_LENGTH else "is extra"
        n = abs(len(s) - SERIAL_LENGTH)
        raise SerialError(
            f"a serial has {SERIAL_LENGTH} characters (4 prefix, 2 year, 9 number, 1 check) but this one has "
            f"{len(s)} without spaces and hyphens: {n} character{'s' if n > 1 else ''} {what}", "length")
    for i in range(PREFIX_LENGTH):
        if s[i] not in _PREFIX_SET:
            raise SerialError(f"position {i + 1}: {_prefix_hint(s[i])}", "charset", i + 1)
    for i in (4, 5):
        if s[i] not in _DIGITS:
            raise SerialError(f"position {i + 1}: the year is two digits (26 for 2026); {_digit_hint(s[i])}",
                              "year", i + 1)
    for i in range(6, 15):
        if s[i] not in _DIGITS:
            raise SerialError(f"position {i + 1}: the sequence number is 9 digits; {_digit_hint(s[i])}",
                              "charset", i + 1)
    if s[15] not in _VALUE:
        raise SerialError(f"position 16: the check character is a digit or a letter A-Z, not {_show(s[15])}",
                          "charset", 16)
    seq = int(s[6:15])
    if seq == 0:
        raise SerialError("positions 7-15: the sequence number 000000000 is never issued (numbers start at 1)",
                          "sequence", 7)
    expected = _check_fast(s[:15])
    if s[15] != expected:
        shown = {"0": "0 (the digit zero)", "O": "O (the letter)",
                 "1": "1 (the digit one)", "I": "I (the letter)"}.get(expected, expected)
        raise SerialError(
            f"check character should be {shown}, not {s[15]}: a character is probably mistyped "
            f"or two neighbouring characters are swapped", "check", 16)
    return Serial._trusted(s[:4], 2000 + int(s[4:6]), seq, s)


# ---------------------------------------------------------------------------
# Prefix suggestion
# ---------------------------------------------------------------------------

_WORD_RE = re.compile(r"[A-Z]+[a-z]*|[a-z]+|[0-9]+")
_VOWELS = frozenset("AEIOUVY")
_PAD = "0"


def _latin_words(name: str) -> list[str]:
    # Strip tone marks and umlauts (Bó -> Bo, lü -> lu); split on spaces, punctuation and CamelCase.
    folded = "".join(c for c in unicodedata.normalize("NFKD", name) if not unicodedata.combining(c))
    folded = unicodedata.normalize("NFKC", folded)
    return [w.upper() for w in _WORD_RE.findall(folded) if w.isascii()]


def _base_prefixes(words: list[str]) -> tuple[str, list[str]]:
    """The preferred prefix and the name's other usable characters, best first."""
    # Rank every usable character: word initials first, then the h of zh/ch/sh
    # initials, then other consonants and digits, then vowels; ties go to the
    # earlier character. The chosen four keep their order in the name.
    ranked = []
    for w, word in enumerate(words):
        for c, ch in enumerate(word):
            if ch not in _PREFIX_SET:
                continue                       # I and O are never used
            if c == 0:
                rank = 0
            elif c == 1 and ch == "H" and word[0] in "ZCS":
                rank = 1
            elif ch in _VOWELS:
                rank = 3
            else:
                rank = 2
            ranked.append((rank, w, c, ch))
    ranked.sort()
    chosen = sorted(ranked[:PREFIX_LENGTH], key=lambda r: (r[1], r[2]))
    base = "".join(r[3] for r in chosen).ljust(PREFIX_LENGTH, _PAD)
    spare = []
    for r in ranked[PREFIX_LENGTH:]:
        if r[3] not in spare:
            spare.append(r[3])
    return base, spare


def suggest_prefix(pinyin_or_name: str, taken: set[str] | frozenset[str] = frozenset()) -> str:
    """A 4-character serial prefix for a GI, from its pinyin (or Latin) name, not in ``taken``.

    "Bo Bai Shao" -> "BBSH", "Xi Hu Long Jing" -> "XHLJ", "Wu Chang Da Mi" -> "WCDM".
    Deterministic: the same name and the same taken set give the same answer. When
    the preferred prefix is taken, the last character is varied first (through the
    name's other letters, then the whole alphabet), then the third, then the second,
    and finally every prefix starting with the name's first letter, then every prefix.
    Chinese characters must be converted to pinyin first (e.g. with pypinyin).
    """
    if not isinstance(pinyin_or_name, str):
        raise TypeError("pinyin_or_name must be a string")
    words = _latin_words(pinyin_or_name)
    if not words:
        raise ValueError(f"no Latin letters or digits in {pinyin_or_name!r}: "
                         "pass the GI's pinyin or English name (convert Chinese with pypinyin)")
    taken_upper = {t.upper() for t in taken}
    base, spare = _base_prefixes(words)
    for candidate in _prefix_candidates(base, spare):
        if candidate not in taken_upper:
            return candidate
    raise ValueError("every one of the 34^4 serial prefixes is taken")


def _prefix_candidates(base: str, spare: list[str]):
    seen = set()
    # The name's spare letters first, then the other letters, then digits.
    choices = spare + sorted((c for c in PREFIX_ALPHABET if c not in spare), key=lambda c: (c.isdigit(), c))

    def fresh(c: str):
        if c not in seen:
            seen.add(c)
            return True
        return False

    if fresh(base):
        yield base
    for pos in (3, 2, 1):
        for ch in choices:
            c = base[:pos] + ch + base[pos + 1:]
            if fresh(c):
                yield c
    for keep in (1, 0):
        for tail in itertools.product(PREFIX_ALPHABET, repeat=PREFIX_LENGTH - keep):
            c = base[:keep] + "".join(tail)
            if fresh(c):
                yield c


# ---------------------------------------------------------------------------
# Keys
# ---------------------------------------------------------------------------

# The MAC suites a key may use, by the name its setting entry carries ("A:<key>" is HMAC-SHA-256;
# "S:hmac-sm3:<key>" is HMAC-SM3, GB/T 32905 through OpenSSL 3). The key id in every code names its key,
# hence its suite: codes made under either stay verifiable after the active key changes suite.
MAC_SUITES = {"hmac-sha256": "sha256", "hmac-sm3": "sm3"}
DEFAULT_SUITE = "hmac-sha256"


def _hmac_pads(key: bytes, suite: str = DEFAULT_SUITE) -> tuple[object, object]:
    """RFC 2104 HMAC inner and outer states (SHA-256 or SM3, both 64-byte blocks), the inner one already fed
    the domain prefix."""
    name = MAC_SUITES[suite]
    if len(key) > 64:
        key = hashlib.new(name, key).digest()
    key = key.ljust(64, b"\0")
    inner = hashlib.new(name, bytes(b ^ 0x36 for b in key))
    inner.update(MAC_DOMAIN)
    outer = hashlib.new(name, bytes(b ^ 0x5C for b in key))
    return inner, outer


def _b64url_decode(text: str) -> bytes:
    text = text.strip().rstrip("=").replace("+", "-").replace("/", "_")
    if not text or not re.fullmatch(r"[A-Za-z0-9_-]+", text) or len(text) % 4 == 1:
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64url_encode(key: bytes) -> str:
    return base64.urlsafe_b64encode(key).rstrip(b"=").decode("ascii")


def _check_kid(kid: object, what: str = "key id") -> str:
    if not isinstance(kid, str) or len(kid) != 1 or kid not in KID_ALPHABET:
        raise ValueError(f"{what} must be one upper-case letter A-Z, got {kid!r}")
    return kid


class MarkKeyring:
    """HMAC keys for verification codes, by one-letter key id, and the id used for new codes."""

    __slots__ = ("_keys", "_pads", "_suites", "active")

    def __init__(self, keys: dict[str, bytes], active: str, suites: dict[str, str] | None = None):
        if not isinstance(keys, dict) or not keys:
            raise ValueError("a keyring needs at least one key: {'A': <32+ random bytes>}")
        checked: dict[str, bytes] = {}
        for kid, key in keys.items():
            _check_kid(kid)
            if not isinstance(key, (bytes, bytearray)):
                raise TypeError(f"key {kid} must be bytes, got {type(key).__name__}")
            if len(key) < MIN_KEY_BYTES:
                raise ValueError(f"key {kid} has {len(key)} bytes; at least {MIN_KEY_BYTES} random bytes are required")
            checked[kid] = bytes(key)
        _check_kid(active, "active key id")
        if active not in checked:
            raise ValueError(f"active key id {active} is not in the keyring (it holds {', '.join(sorted(checked))})")
        suites = dict(suites or {})
        for kid, suite in suites.items():
            if kid not in checked:
                raise ValueError(f"a suite is given for key id {kid}, which is not in the keyring")
            if suite not in MAC_SUITES:
                raise ValueError(f"key {kid}: unknown MAC suite {suite!r} (known: {', '.join(MAC_SUITES)})")
        self._suites = {kid: suites.get(kid, DEFAULT_SUITE) for kid in checked}
        self._keys = checked
        self._pads = {kid: _hmac_pads(key, self._suites[kid]) for kid, key in checked.items()}
        self.active = active

    @classmethod
    def from_setting(cls, text: str, active: str) -> MarkKeyring:
        """Parse ``"A:<base64url key>,B:hmac-sm3:<base64url key>"`` (each key 32+ bytes; a suite between
        the key id and the key, HMAC-SHA-256 when none is named)."""
        if not isinstance(text, str) or not text.strip():
            raise ValueError("the mark key setting is empty; expected 'A:<base64url of 32+ random bytes>' "
                             "entries separated by commas (MarkKeyring.generate() makes one)")
        keys: dict[str, bytes] = {}
        suites: dict[str, str] = {}
        entries = [e.strip() for e in text.split(",")]
        for n, entry in enumerate(entries, start=1):
            if not entry:
                raise ValueError(f"mark key setting entry {n} is empty (a stray comma?)")
            kid, sep, encoded = entry.partition(":")
            kid = kid.strip()
            if not sep:
                raise ValueError(f"mark key setting entry {n} has no ':'; expected KID:KEY, e.g. A:<base64url key>")
            if len(kid) != 1 or kid not in KID_ALPHABET:
                raise ValueError(f"mark key setting entry {n}: key id {kid!r} must be one upper-case letter A-Z")
            if kid in keys:
                raise ValueError(f"mark key setting: key id {kid} appears twice")
            suite, colon, rest = encoded.partition(":")
            if colon:
                if suite.strip() not in MAC_SUITES:
                    raise ValueError(f"mark key setting entry {n} (key {kid}): unknown MAC suite {suite.strip()!r}; "
                                     f"write {', '.join(MAC_SUITES)}, or nothing for {DEFAULT_SUITE}")
                suites[kid], encoded = suite.strip(), rest
            try:
                key = _b64url_decode(encoded)
            except (ValueError, binascii.Error):
                raise ValueError(f"mark key setting entry {n} (key {kid}): the key is not valid base64url") from None
            if len(key) < MIN_KEY_BYTES:
                raise ValueError(f"mark key setting entry {n} (key {kid}): the key has {len(key)} bytes; "
                                 f"at least {MIN_KEY_BYTES} random bytes are required")
            keys[kid] = key
        if not isinstance(active, str) or active.strip() not in keys:
            raise ValueError(f"active mark key id {active!r} is not in the setting (it has {', '.join(keys)})")
        return cls(keys, active.strip(), suites)

    @classmethod
    def generate(cls, kid: str = "A", suite: str = DEFAULT_SUITE) -> tuple[MarkKeyring, str]:
        """A keyring with one fresh random 32-byte key of `suite`, and its setting text."""
        _check_kid(kid)
        ring = cls({kid: secrets.token_bytes(MIN_KEY_BYTES)}, kid, {kid: suite})
        return ring, ring.setting_text()

    def suite_of(self, kid: str) -> str:
        """The MAC suite of key `kid` (hmac-sha256 or hmac-sm3)."""
        return self._suites[kid]

    def rotated(self, kid: str, suite: str | None = None) -> tuple[MarkKeyring, str]:
        """This keyring plus a fresh random key ``kid`` made active (of `suite`, else the active key's), and
        the new setting text. Codes made with the older keys stay verifiable, whatever their suite."""
        _check_kid(kid)
        if kid in self._keys:
            raise ValueError(f"key id {kid} is already in the keyring; pick an unused letter")
        suite = suite or self._suites[self.active]
        ring = MarkKeyring({**self._keys, kid: secrets.token_bytes(MIN_KEY_BYTES)}, kid,
                           {**self._suites, kid: suite})
        return ring, ring.setting_text()

    def setting_text(self) -> str:
        """The ``"A:<base64url>,B:hmac-sm3:<...>"`` setting for this keyring (secret: store it like a password)."""
        return ",".join(f"{kid}:{'' if self._suites[kid] == DEFAULT_SUITE else self._suites[kid] + ':'}"
                        f"{_b64url_encode(key)}" for kid, key in sorted(self._keys.items()))

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(sorted(self._keys))

    def __contains__(self, kid: object) -> bool:
        return kid in self._keys

    def __repr__(self) -> str:  # never show key material
        return f"MarkKeyring(key_ids={''.join(self.key_ids)!r}, active={self.active!r})"

    def _tag(self, kid: str, serial16: str) -> str:
        inner, outer = self._pads[kid]
        i = inner.copy()
        i.update(serial16.encode("ascii"))
        o = outer.copy()
        o.update(i.digest())
        return _encode_tag(o.digest())


# Base32 of 70 bits as seven 10-bit pairs (base64.b32encode is pure Python and ~3x slower).
_PAIRS = [TAG_ALPHABET[i >> 5] + TAG_ALPHABET[i & 31] for i in range(1024)]


def _encode_tag(digest: bytes) -> str:
    n = int.from_bytes(digest[:9], "big") >> 2        # the first 70 bits
    p = _PAIRS
    return (p[n >> 60] + p[(n >> 50) & 1023] + p[(n >> 40) & 1023] + p[(n >> 30) & 1023]
            + p[(n >> 20) & 1023] + p[(n >> 10) & 1023] + p[n & 1023])


# ---------------------------------------------------------------------------
# Verification codes
# ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class CodeCheck:
    """The answer for one scanned code. ``serial`` is set only when the code is valid."""

    status: str                  # 'valid' | 'forged' | 'malformed'
    serial: Serial | None
    kid: str | None
    reason: str

    @property
    def valid(self) -> bool:
        return self.status == "valid"


def make_code(keyring: MarkKeyring, serial: str | Serial, kid: str | None = None) -> str:
    """The 30-character verification code for a serial, with the active key unless ``kid`` is given."""
    if not isinstance(serial, Serial):
        serial = parse_serial(serial)
    kid = keyring.active if kid is None else kid
    if kid not in keyring._pads:
        raise ValueError(f"key id {kid!r} is not in the keyring (it holds {', '.join(keyring.key_ids)})")
    text = serial.text
    return kid + text[:15] + keyring._tag(kid, text)


_CODE_RE = re.compile(r"[A-Z][0-9A-HJ-NP-Z]{4}[0-9]{11}[A-Z2-7]{14}")
_VALID_REASON = "the tag matches the serial"
_MISMATCH_REASON = "the tag does not match the serial: not a code issued with this key"


def verify_code(keyring: MarkKeyring, code: str) -> CodeCheck:
    """Check a scanned code offline: 'valid', 'forged' (well-formed, wrong tag or key id) or 'malformed'."""
    try:
        c = code.strip()
    except AttributeError:
        return CodeCheck("malformed", None, None, "a code is text")
    if not c.isascii():          # before upper(): it maps some non-ASCII letters to ASCII ones
        return CodeCheck("malformed", None, None, _malformed_reason(c))
    c = c.upper()
    if len(c) != CODE_LENGTH or _CODE_RE.fullmatch(c) is None or c[7:16] == "000000000":
        return CodeCheck("malformed", None, None, _malformed_reason(c))
    pads = keyring._pads.get(c[0])
    if pads is None:
        return CodeCheck("forged", None, c[0], f"unknown key id {c[0]}")
    serial16 = c[1:16] + _check_fast(c[1:16])
    inner, outer = pads
    i = inner.copy()
    i.update(serial16.encode("ascii"))
    o = outer.copy()
    o.update(i.digest())
    if hmac.compare_digest(_encode_tag(o.digest()), c[16:]):
        return CodeCheck("valid", Serial._trusted(c[1:5], 2000 + int(c[5:7]), int(c[7:16]), serial16),
                         c[0], _VALID_REASON)
    return CodeCheck("forged", None, c[0], _MISMATCH_REASON)


def _malformed_reason(c: str) -> str:
    if len(c) != CODE_LENGTH:
        return f"a code has {CODE_LENGTH} characters, this one has {len(c)}"
    if c[0] not in KID_ALPHABET:
        return f"position 1: the key id is a letter A-Z, not {_show(c[0])}"
    for i in range(1, 5):
        if c[i] not in _PREFIX_SET:
            return f"position {i + 1}: {_show(c[i])} cannot be in a serial prefix"
    for i in range(5, 16):
        if c[i] not in _DIGITS:
            return f"position {i + 1}: year and sequence number are digits, not {_show(c[i])}"
    if c[7:16] == "000000000":
        return "positions 8-16: sequence number 0 is never issued"
    for i in range(16, CODE_LENGTH):
        if c[i] not in TAG_ALPHABET:
            return f"position {i + 1}: the tag uses A-Z and 2-7, not {_show(c[i])}"
    return "not shaped like a code"  # unreachable while the regex and the loops agree


# ---------------------------------------------------------------------------
# QR capacity
# ---------------------------------------------------------------------------

# Data codewords per version (1-10) and error-correction level, ISO/IEC 18004 Table 7.
_DATA_CODEWORDS = {
    "L": (19, 34, 55, 80, 108, 136, 156, 194, 232, 274),
    "M": (16, 28, 44, 64, 86, 108, 124, 154, 182, 216),
    "Q": (13, 22, 34, 48, 62, 76, 88, 110, 132, 154),
    "H": (9, 16, 26, 36, 46, 60, 66, 86, 100, 122),
}
MAX_QR_VERSION = 10
QR_ALPHANUMERIC = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:")


def _ec_level(error_correction: str) -> str:
    level = error_correction.upper() if isinstance(error_correction, str) else error_correction
    if level not in _DATA_CODEWORDS:
        raise ValueError(f"error correction must be L, M, Q or H, got {error_correction!r}")
    return level


def _check_version(version: int) -> int:
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= MAX_QR_VERSION:
        raise ValueError(f"QR version must be 1-{MAX_QR_VERSION}, got {version!r}")
    return version


def qr_capacity(version: int, error_correction: str = "M", mode: str = "byte") -> int:
    """Characters (alphanumeric mode) or bytes (byte mode) one segment can hold at a version (1-10)."""
    bits = _DATA_CODEWORDS[_ec_level(error_correction)][_check_version(version) - 1] * 8
    if mode == "byte":
        return (bits - 4 - (8 if version <= 9 else 16)) // 8
    if mode == "alphanumeric":
        free = bits - 4 - (9 if version <= 9 else 11)
        return free // 11 * 2 + (1 if free % 11 >= 6 else 0)
    raise ValueError(f"mode must be 'byte' or 'alphanumeric', got {mode!r}")


def code_url(base_url: str, code: str) -> str:
    """The URL the QR holds: ``{base_url}/v/{code}``."""
    return f"{base_url.rstrip('/')}{CODE_PATH}{code}"


def qr_version(url: str, error_correction: str = "M") -> int:
    """The smallest QR version (1-10) holding ``url`` in one segment, alphanumeric mode if it can."""
    level = _ec_level(error_correction)
    mode = "alphanumeric" if all(ch in QR_ALPHANUMERIC for ch in url) else "byte"
    length = len(url) if mode == "alphanumeric" else len(url.encode("utf-8"))
    for version in range(1, MAX_QR_VERSION + 1):
        if length <= qr_capacity(version, level, mode):
            return version
    raise ValueError(f"{length} {'characters' if mode == 'alphanumeric' else 'bytes'} do not fit "
                     f"QR version {MAX_QR_VERSION} at error correction {level}")


def max_base_url_length(error_correction: str = "M", max_version: int = 5) -> int:
    """The longest base URL (bytes) whose every code URL fits ``max_version`` in byte mode."""
    return qr_capacity(max_version, error_correction, "byte") - len(CODE_PATH) - CODE_LENGTH
