"""Benchmark: offline verification-code checks per second on one core, fast path vs a naive baseline.

Run as `python -m bench.codes [--codes N] [--naive-sample N] [--repeat R] [--seed S]`.
Measures verify_code on valid and on forged codes (no database), side by side
with a naive implementation in the same run (a fresh hmac.new per check, the
full digest base32-encoded, the serial re-parsed and its check character
recomputed the generic way), prints the rates, their ratio and make_code per
second, and PASS/MISS against the target (>= 100,000 checks/s on one core); the same checks with
HMAC-SM3 keys (China's commercial cryptography suite) side by side, against the same target.
Exits 0 either way: a benchmark reports, it does not gate.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import os
import random
import re
import sys
import time

from gi_service.codes import (
    ALPHABET,
    PREFIX_ALPHABET,
    CodeCheck,
    MarkKeyring,
    _hybrid_check,
    format_serial,
    make_code,
    parse_serial,
    verify_code,
)

TARGET_RATE = 100_000


def naive_verify(keys: dict[str, bytes], code: str) -> CodeCheck:
    """The obvious implementation: the baseline the fast path is measured against."""
    code = code.strip().upper()
    if not re.fullmatch(r"[A-Z][0-9A-HJ-NP-Z]{4}[0-9]{11}[A-Z2-7]{14}", code) or code[7:16] == "000000000":
        return CodeCheck("malformed", None, None, "not shaped like a code")
    key = keys.get(code[0])
    if key is None:
        return CodeCheck("forged", None, code[0], "unknown key id")
    serial = parse_serial(code[1:16] + _hybrid_check(code[1:16], ALPHABET))
    mac = hmac.new(key, b"gi-mark-v1|" + serial.text.encode("ascii"), hashlib.sha256)
    tag = base64.b32encode(mac.digest()).decode("ascii")[:14]
    if hmac.compare_digest(tag, code[16:]):
        return CodeCheck("valid", serial, code[0], "the tag matches the serial")
    return CodeCheck("forged", None, code[0], "the tag does not match the serial")


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def _best_rate(fn, items, repeat: int) -> float:
    """Items per second, best of `repeat` passes over the whole list."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        for item in items:
            fn(item)
        best = min(best, time.perf_counter() - started)
    return len(items) / best


def _pin_to_one_core() -> tuple[set[int] | None, str]:
    if not hasattr(os, "sched_getaffinity"):
        return None, "not pinned (no sched_setaffinity here); the check loop is single-threaded"
    before = os.sched_getaffinity(0)
    cpu = min(before)
    os.sched_setaffinity(0, {cpu})
    return before, f"pinned to CPU {cpu} of {len(before)}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--codes", type=int, default=200_000, help="valid codes (and as many forged ones)")
    parser.add_argument("--naive-sample", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3, help="passes per measurement; the best is reported")
    parser.add_argument("--seed", type=int, default=20260601)
    args = parser.parse_args(argv)

    rng = random.Random(args.seed)
    keys = {"A": rng.randbytes(32), "B": rng.randbytes(32)}
    ring = MarkKeyring(keys, "B")
    # The same keys as HMAC-SM3 (China's commercial cryptography suite), measured side by side.
    sm_ring = MarkKeyring(keys, "B", {"A": "hmac-sm3", "B": "hmac-sm3"})
    serials = [format_serial("".join(rng.choices(PREFIX_ALPHABET, k=4)), rng.randint(2000, 2099),
                             rng.randint(1, 999_999_999)) for _ in range(args.codes)]
    before, pinned = _pin_to_one_core()
    try:
        make_rate = _best_rate(lambda s: make_code(ring, s), serials, 1)
        valid = [make_code(ring, s, kid=rng.choice("AB")) for s in serials]
        # Forged: the same codes with one tag character changed (the realistic guess: right shape, wrong tag).
        forged = [c[:-1] + ("A" if c[-1] != "A" else "B") for c in valid]

        fast_valid = _best_rate(lambda c: verify_code(ring, c), valid, args.repeat)
        fast_forged = _best_rate(lambda c: verify_code(ring, c), forged, args.repeat)
        n = min(args.naive_sample, args.codes)
        naive_valid = _best_rate(lambda c: naive_verify(keys, c), valid[:n], args.repeat)
        naive_forged = _best_rate(lambda c: naive_verify(keys, c), forged[:n], args.repeat)
        sm_valid_codes = [make_code(sm_ring, s, kid=rng.choice("AB")) for s in serials]
        sm_forged_codes = [c[:-1] + ("A" if c[-1] != "A" else "B") for c in sm_valid_codes]
        sm_valid = _best_rate(lambda c: verify_code(sm_ring, c), sm_valid_codes, args.repeat)
        sm_forged = _best_rate(lambda c: verify_code(sm_ring, c), sm_forged_codes, args.repeat)
    finally:
        if before is not None:
            os.sched_setaffinity(0, before)

    def same(a: CodeCheck, b: CodeCheck) -> bool:   # reasons are worded differently
        return (a.status, a.serial, a.kid) == (b.status, b.serial, b.kid)

    agree = sum(same(verify_code(ring, c), naive_verify(keys, c)) for c in valid[:n] + forged[:n])
    statuses = {s: 0 for s in ("valid", "forged", "malformed")}
    for c in valid:
        statuses[verify_code(ring, c).status] += 1
    for c in forged:
        statuses[verify_code(ring, c).status] += 1

    print(f"codes: Python {sys.version.split()[0]}, {pinned}; best of {args.repeat} passes")
    print(f"codes: make_code {make_rate:,.0f} codes/s ({args.codes:,} serials)")
    print(f"codes: verify_code valid  {fast_valid:,.0f} checks/s; naive {naive_valid:,.0f} checks/s; "
          f"ratio {fast_valid / naive_valid:.1f} x")
    print(f"codes: verify_code forged {fast_forged:,.0f} checks/s; naive {naive_forged:,.0f} checks/s; "
          f"ratio {fast_forged / naive_forged:.1f} x")
    print(f"codes: statuses over {2 * args.codes:,} codes: {statuses}")
    print(f"codes: fast and naive agree on {agree}/{2 * n} codes")
    print(f"codes: HMAC-SM3 keys: verify_code valid {sm_valid:,.0f} checks/s, forged {sm_forged:,.0f} checks/s "
          f"({sm_valid / fast_valid:.2f} x HMAC-SHA-256's)")
    print(f"codes: {_verdict(fast_valid >= TARGET_RATE)} valid checks >= {TARGET_RATE:,}/s per core (HMAC-SHA-256)")
    print(f"codes: {_verdict(fast_forged >= TARGET_RATE)} forged checks >= {TARGET_RATE:,}/s per core (HMAC-SHA-256)")
    print(f"codes: {_verdict(sm_valid >= TARGET_RATE)} valid checks >= {TARGET_RATE:,}/s per core (HMAC-SM3)")
    print(f"codes: {_verdict(sm_forged >= TARGET_RATE)} forged checks >= {TARGET_RATE:,}/s per core (HMAC-SM3)")
    print(f"codes: {_verdict(agree == 2 * n and statuses['malformed'] == 0 and statuses['valid'] == args.codes)} "
          f"fast == naive, every valid code valid, every altered code forged")
    return 0


if __name__ == "__main__":
    sys.exit(main())
