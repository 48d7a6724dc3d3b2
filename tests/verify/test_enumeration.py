"""Enumeration is hopeless by design: random well-formed codes never find a genuine mark.

A code's last 14 characters are a 70-bit tag, the first 70 bits of HMAC-SHA256 under a secret key over
the serial. Without the key a guessed tag is right with probability 2⁻⁷⁰ ≈ 8.5·10⁻²² per guess, whichever
serial it names, so the probability that a sample of n guesses holds any valid code is at most
n·2⁻⁷⁰ (union bound):

* 1,000,000 codes checked offline: ≤ 10⁶ · 2⁻⁷⁰ ≈ 8.5·10⁻¹⁶;
* 2,000 codes per database backend through GET /v/: ≤ 2·10³ · 2⁻⁷⁰ ≈ 1.7·10⁻¹⁸.

So a hit here is not bad luck: it would mean the tag is not doing its job. Each sample also carries a
few planted genuine codes, which must be found, so the checks cannot pass by finding nothing at all.
The random seed is printed on failure to replay the sample.
"""
from __future__ import annotations

import random
import secrets

import pytest

from gi_service import create_app
from gi_service.codes import TAG_ALPHABET, format_serial, make_code, verify_code
from gi_service.config import Settings, finalize

OFFLINE_SAMPLE = 1_000_000
HTTP_SAMPLE = 2_000
JSON = {"Accept": "application/json"}

# Ten random bits -> two base32 characters, so a 70-bit tag is seven table lookups.
_PAIRS = [TAG_ALPHABET[i >> 5] + TAG_ALPHABET[i & 31] for i in range(1024)]


def random_tag(rng: random.Random) -> str:
    x = rng.getrandbits(70)
    return "".join(_PAIRS[(x >> shift) & 1023] for shift in (60, 50, 40, 30, 20, 10, 0))


def random_codes(rng: random.Random, head: str, n: int):
    """n well-formed codes `{head}{random 9-digit sequence}{random tag}`; head = key id + prefix + year."""
    for _ in range(n):
        yield f"{head}{rng.randrange(1, 10**9):09d}{random_tag(rng)}"


@pytest.mark.heavy   # fuzzing: a million codes (heavy tier, see pyproject.toml)
def test_a_million_random_codes_hold_no_valid_one(tmp_path):
    """Checked offline against the app's keyring, does any of 10⁶ random well-formed codes verify?"""
    settings = finalize(Settings(env="test", instance_path=tmp_path / "instance",
                                 database_url=f"sqlite:///{tmp_path / 'unused.sqlite3'}",
                                 secret_key="test-secret-key-" + "x" * 32, public_base_url="http://gi.test",
                                 ratelimit_enabled=False))
    keyring = create_app(settings).extensions["gi_keyring"]
    seed = secrets.randbits(64)
    rng = random.Random(seed)
    head = f"{keyring.active}BBSH26"
    planted = {make_code(keyring, format_serial("BBSH", 2026, rng.randrange(1, 10**9))) for _ in range(10)}
    sample = list(random_codes(rng, head, OFFLINE_SAMPLE))
    positions = rng.sample(range(OFFLINE_SAMPLE), len(planted))
    for pos, code in zip(positions, planted):
        sample[pos] = code
    assert all(len(c) == 30 and c.startswith(head) for c in sample)
    found = {c for c in sample if verify_code(keyring, c).valid}
    assert found == planted, f"seed {seed}: valid codes beyond the planted ones: {sorted(found - planted)}"


@pytest.mark.heavy   # fuzzing: two thousand guesses through the page (heavy tier)
def test_random_tags_for_issued_serials_are_unknown_on_the_page(world, client):
    """Do thousands of random tags for serials that really are issued and activated all answer 'unknown' (404)?"""
    batch = world.batch(50)
    world.activate(batch, 1, 50)
    seed = secrets.randbits(64)
    rng = random.Random(seed)
    genuine = {batch.code(n) for n in (1, 25, 50)}
    guesses = []
    for _ in range(HTTP_SAMPLE):
        real = batch.code(rng.randrange(1, 51))
        guesses.append(real[:16] + random_tag(rng))    # key id and serial of a genuine mark, random tag
    guesses = [g for g in guesses if g not in genuine]
    statuses: dict[int, int] = {}
    hits = []
    for i, code in enumerate(guesses):
        # Guesses spread over many clients, as a distributed attempt would be (and as the limit forces).
        client_addr = {"REMOTE_ADDR": f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"}
        r = client.get(f"/v/{code}", headers=JSON, environ_base=client_addr)
        statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
        if r.status_code != 404 or r.json["error"] != "unknown":
            hits.append((code, r.status_code))
    assert not hits, f"seed {seed}: random tags that did not answer 'unknown': {hits[:5]}"
    assert statuses == {404: len(guesses)} and len(guesses) >= HTTP_SAMPLE - 3
    for code in genuine:
        r = client.get(f"/v/{code}", headers=JSON)
        assert r.status_code == 200 and r.json["verdict"] == "genuine", r.json
