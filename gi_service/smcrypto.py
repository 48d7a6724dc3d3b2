"""SM2 signatures (GB/T 32918-2016) for ledger checkpoints under China's commercial cryptography suite.

``cryptography`` (OpenSSL 3) gives SM3, HMAC-SM3 and SM4 but no SM2; Python has no maintained binding of
OpenSSL's SM2. The curve arithmetic comes from ``gmssl`` (pure Python, on PyPI since 2018), used only
for what it does right — points on the SM2 curve and the signature equation — while this module
supplies everything around it:

* the per-signature nonce ``k``, from ``secrets`` (gmssl's own default draws it from ``random``, which
  is not a cryptographic generator: a predictable ``k`` reveals the private key);
* the message digest ``e = SM3(Z_A || M)`` with ``Z_A`` over the standard's default user id
  ``1234567812345678`` (GM/T 0009), the curve and the public key, computed with OpenSSL's SM3;
* DER encoding of signatures (``SEQUENCE { r, s }``) and of public keys (SubjectPublicKeyInfo with the
  SM2 curve OID 1.2.156.10197.1.301), so that OpenSSL verifies what the service signs and the other
  way round (``openssl pkeyutl -verify -rawin -digest sm3 -pkeyopt distid:1234567812345678``).

Pure Python is fast enough: a checkpoint is signed seldom, never per request.
"""
from __future__ import annotations

import base64
import hashlib
import secrets

from gmssl import sm2

_CURVE = sm2.default_ecc_table
N = int(_CURVE["n"], 16)
DEFAULT_ID = b"1234567812345678"
# SubjectPublicKeyInfo { AlgorithmIdentifier { id-ecPublicKey, SM2 curve }, BIT STRING 04 || X || Y }
_SPKI_PREFIX = bytes.fromhex("3059301306072a8648ce3d020106082a811ccf5501822d03420004")


def _z(public_xy: bytes, user_id: bytes = DEFAULT_ID) -> bytes:
    bits = (len(user_id) * 8).to_bytes(2, "big")
    curve = bytes.fromhex(_CURVE["a"] + _CURVE["b"] + _CURVE["g"])
    return hashlib.new("sm3", bits + user_id + curve + public_xy).digest()


def _digest(message: bytes, public_xy: bytes) -> int:
    return int.from_bytes(hashlib.new("sm3", _z(public_xy) + message).digest(), "big")


def _der_int(n: int) -> bytes:
    raw = n.to_bytes((n.bit_length() + 8) // 8, "big")        # a leading 0 keeps it positive
    return b"\x02" + bytes([len(raw)]) + raw


def der_signature(r: int, s: int) -> bytes:
    body = _der_int(r) + _der_int(s)
    return b"\x30" + bytes([len(body)]) + body


def parse_der_signature(der: bytes) -> tuple[int, int]:
    """(r, s) from ``SEQUENCE { INTEGER r, INTEGER s }``; ValueError if it is not one."""
    if len(der) < 8 or der[0] != 0x30 or der[1] != len(der) - 2:
        raise ValueError("not a DER SM2 signature")
    out, i = [], 2
    for _ in range(2):
        if der[i] != 0x02:
            raise ValueError("not a DER SM2 signature")
        length = der[i + 1]
        out.append(int.from_bytes(der[i + 2:i + 2 + length], "big"))
        i += 2 + length
    if i != len(der):
        raise ValueError("trailing bytes after the DER SM2 signature")
    return out[0], out[1]


def public_key_pem(public_xy: bytes) -> str:
    body = base64.encodebytes(_SPKI_PREFIX + public_xy).decode().replace("\n", "")
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    return "-----BEGIN PUBLIC KEY-----\n" + "\n".join(lines) + "\n-----END PUBLIC KEY-----\n"


def public_key_from_pem(pem: str) -> bytes:
    """X || Y (64 bytes) of an SM2 public key in PEM (SubjectPublicKeyInfo)."""
    body = "".join(line for line in pem.strip().splitlines() if not line.startswith("-----"))
    der = base64.b64decode(body)
    if len(der) != len(_SPKI_PREFIX) + 64 or not der.startswith(_SPKI_PREFIX):
        raise ValueError("not an SM2 public key (SubjectPublicKeyInfo with the SM2 curve)")
    return der[len(_SPKI_PREFIX):]


class SM2Key:
    """An SM2 key pair (or a public key alone) that signs and verifies messages as OpenSSL does."""

    def __init__(self, private_scalar: int | None = None, public_xy: bytes | None = None):
        if private_scalar is not None:
            if not 1 <= private_scalar < N - 1:
                raise ValueError("an SM2 private key is an integer in [1, n-2]")
            engine = sm2.CryptSM2(private_key=f"{private_scalar:064x}", public_key="")
            public_xy = bytes.fromhex(engine._kg(private_scalar, _CURVE["g"]))
        if public_xy is None or len(public_xy) != 64:
            raise ValueError("an SM2 public key is the 64 bytes X || Y")
        self.private_scalar = private_scalar
        self.public_xy = public_xy
        self._engine = sm2.CryptSM2(private_key=f"{private_scalar:064x}" if private_scalar else "",
                                    public_key=public_xy.hex())

    @classmethod
    def generate(cls) -> SM2Key:
        return cls(secrets.randbelow(N - 2) + 1)

    def sign(self, message: bytes) -> bytes:
        """The DER signature of `message` (SM3 over Z_A with the default user id), with a fresh secret nonce."""
        if self.private_scalar is None:
            raise ValueError("this SM2 key has no private part")
        e = _digest(message, self.public_xy)
        while True:
            k = secrets.randbelow(N - 1) + 1
            hexsig = self._engine.sign(e.to_bytes(32, "big"), f"{k:064x}")
            if hexsig is not None:                     # r = 0 or r + k = n: draw another nonce
                return der_signature(int(hexsig[:64], 16), int(hexsig[64:], 16))

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            r, s = parse_der_signature(signature)
        except (ValueError, IndexError):
            return False
        if not (1 <= r < N and 1 <= s < N):
            return False
        e = _digest(message, self.public_xy)
        return bool(self._engine.verify(f"{r:064x}{s:064x}", e.to_bytes(32, "big")))

    def public_key_pem(self) -> str:
        return public_key_pem(self.public_xy)
