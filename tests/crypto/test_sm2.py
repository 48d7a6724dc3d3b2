"""SM2 signatures interoperate with OpenSSL's command line, in both directions (gi_service/smcrypto.py)."""
from __future__ import annotations

import shutil
import subprocess

import pytest

from gi_service.smcrypto import SM2Key, parse_der_signature, public_key_from_pem

OPENSSL = shutil.which("openssl")
DISTID = "distid:1234567812345678"


def openssl(*args: str, **kw) -> subprocess.CompletedProcess:
    if OPENSSL is None:
        pytest.fail("the openssl command line is needed as the outside SM2 peer (Debian's openssl)")
    return subprocess.run([OPENSSL, *args], capture_output=True, timeout=60, **kw)


def test_a_signature_made_by_the_service_verifies_in_openssl(tmp_path):
    """Does OpenSSL (pkeyutl -verify, SM3, the default user id) accept the service's signature with the public key
    the service exports as PEM, and refuse it for another message?"""
    key = SM2Key.generate()
    message = b"gi-ledger-checkpoint|42|" + b"ab" * 32
    (tmp_path / "pub.pem").write_text(key.public_key_pem())
    (tmp_path / "msg").write_bytes(message)
    (tmp_path / "sig").write_bytes(key.sign(message))
    ok = openssl("pkeyutl", "-verify", "-in", str(tmp_path / "msg"), "-sigfile", str(tmp_path / "sig"), "-pubin",
                 "-inkey", str(tmp_path / "pub.pem"), "-rawin", "-digest", "sm3", "-pkeyopt", DISTID)
    assert ok.returncode == 0 and b"Signature Verified Successfully" in ok.stdout, ok.stderr
    (tmp_path / "other").write_bytes(message + b"!")
    bad = openssl("pkeyutl", "-verify", "-in", str(tmp_path / "other"), "-sigfile", str(tmp_path / "sig"), "-pubin",
                  "-inkey", str(tmp_path / "pub.pem"), "-rawin", "-digest", "sm3", "-pkeyopt", DISTID)
    assert bad.returncode != 0


def test_a_signature_made_by_openssl_verifies_in_the_service(tmp_path):
    """Does the service accept a signature OpenSSL made with its own SM2 key (read from OpenSSL's PEM), and refuse
    it for an altered message or with another key?"""
    assert openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:SM2",
                   "-out", str(tmp_path / "key.pem")).returncode == 0
    assert openssl("pkey", "-in", str(tmp_path / "key.pem"), "-pubout", "-out", str(tmp_path / "pub.pem")).returncode == 0
    message = b"a checkpoint signed outside"
    (tmp_path / "msg").write_bytes(message)
    signed = openssl("pkeyutl", "-sign", "-in", str(tmp_path / "msg"), "-inkey", str(tmp_path / "key.pem"), "-rawin",
                     "-digest", "sm3", "-pkeyopt", DISTID, "-out", str(tmp_path / "sig"))
    assert signed.returncode == 0, signed.stderr
    peer = SM2Key(public_xy=public_key_from_pem((tmp_path / "pub.pem").read_text()))
    signature = (tmp_path / "sig").read_bytes()
    assert peer.verify(message, signature)
    assert not peer.verify(message + b"!", signature)
    assert not SM2Key.generate().verify(message, signature)


def test_signatures_use_a_fresh_nonce_and_reject_malformed_input():
    """Does signing the same message twice give two different valid signatures (a fresh secret nonce each time),
    and is garbage or an out-of-range signature refused rather than crashing?"""
    key = SM2Key.generate()
    first, second = key.sign(b"m"), key.sign(b"m")
    assert first != second and key.verify(b"m", first) and key.verify(b"m", second)
    assert parse_der_signature(first)[0] != parse_der_signature(second)[0]
    assert not key.verify(b"m", b"not a signature")
    assert not key.verify(b"m", b"\x30\x06\x02\x01\x00\x02\x01\x00")
    with pytest.raises(ValueError):
        SM2Key(public_xy=b"short")
