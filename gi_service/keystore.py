"""Data-encryption keys for personal data at rest, behind one interface.

Personal data (producer contacts, consumers' names and phone numbers in their reports, TOTP secrets) is
stored encrypted with an AEAD: AES-256-GCM under ``GI_CRYPTO_SUITE=intl``, SM4-GCM (GB/T 32907-2016 in
GCM mode, as GB/T 39786-2021 asks for the confidentiality of important data) under ``sm``. Both come
from ``cryptography`` (OpenSSL 3).

A ``KeyStore`` names its keys by id, says which one encrypts new data (its suite follows the
deployment's), and encrypts or decrypts with a key it holds. It hands out no key bytes, so a hardware
cipher machine (密码机, keys never leave the device) can implement the same three methods later.
``SoftwareKeyStore`` is today's implementation; its keys come from the environment (``GI_DATA_KEYS`` and
``GI_DATA_KEY_ID``), from a file (``GI_DATA_KEYS_FILE``, same format) or, outside production, from
``instance/data_keys``, generated on first run.

Key setting format: comma-separated ``ID:SUITE:BASE64URL`` entries, e.g.
``D1:aes-256-gcm:<32 bytes>,S1:sm4-gcm:<16 bytes>``. Keep every key that still has rows encrypted under
it (``gi-service keys rotate-data`` re-encrypts them under the current key).
"""
from __future__ import annotations

import abc
import base64
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

AES_GCM = "aes-256-gcm"
SM4_GCM = "sm4-gcm"
SUITES = {AES_GCM: 32, SM4_GCM: 16}           # key length in bytes
SUITE_FOR_CRYPTO = {"intl": AES_GCM, "sm": SM4_GCM}
NONCE_BYTES = 12
TAG_BYTES = 16
KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,16}$")


class KeyStoreError(ValueError):
    """A key setting is malformed, or data names a key the store does not hold."""


class DecryptionFailed(KeyStoreError):
    """A ciphertext does not authenticate under its key (tampered, moved between columns, or a wrong key)."""


class KeyStore(abc.ABC):
    """Where data-encryption keys live. Implementations keep the key bytes to themselves."""

    @abc.abstractmethod
    def current_key_id(self) -> str:
        """The id of the key that encrypts new data."""

    @abc.abstractmethod
    def suite_of(self, key_id: str) -> str:
        """The AEAD of a key: aes-256-gcm or sm4-gcm (KeyStoreError for an unknown id)."""

    @abc.abstractmethod
    def encrypt(self, key_id: str, plaintext: bytes, aad: bytes) -> bytes:
        """nonce || ciphertext || tag under the key, binding `aad` (what the data is: table and column)."""

    @abc.abstractmethod
    def decrypt(self, key_id: str, blob: bytes, aad: bytes) -> bytes:
        """The plaintext of `encrypt`'s output; DecryptionFailed if it does not authenticate."""

    def key_ids(self) -> list[str]:
        return [self.current_key_id()]


def sm4_gcm_encrypt(key: bytes, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """SM4-GCM: ciphertext || 16-byte tag (cryptography has no SM4 AEAD class; the Cipher API does GCM)."""
    enc = Cipher(algorithms.SM4(key), modes.GCM(nonce)).encryptor()
    enc.authenticate_additional_data(aad)
    return enc.update(plaintext) + enc.finalize() + enc.tag


def sm4_gcm_decrypt(key: bytes, nonce: bytes, data: bytes, aad: bytes) -> bytes:
    if len(data) < TAG_BYTES:
        raise DecryptionFailed("ciphertext too short")
    dec = Cipher(algorithms.SM4(key), modes.GCM(nonce, data[-TAG_BYTES:])).decryptor()
    dec.authenticate_additional_data(aad)
    try:
        return dec.update(data[:-TAG_BYTES]) + dec.finalize()
    except InvalidTag:
        raise DecryptionFailed("the data does not authenticate under its key") from None


@dataclass(frozen=True)
class _Key:
    suite: str
    secret: bytes


class SoftwareKeyStore(KeyStore):
    """Keys held in this process, read from a setting string or a file."""

    def __init__(self, keys: dict[str, tuple[str, bytes]], current: str) -> None:
        if not keys:
            raise KeyStoreError("no data-encryption key given")
        self._keys = {kid: _Key(suite, secret) for kid, (suite, secret) in keys.items()}
        if current not in self._keys:
            raise KeyStoreError(f"the current data key {current!r} is not among the keys ({', '.join(self._keys)})")
        self._current = current

    @classmethod
    def from_setting(cls, text: str, current: str = "", *, suite: str | None = None) -> "SoftwareKeyStore":
        """Parse ``ID:SUITE:BASE64URL,...``; without `current`, the first key of `suite` (or the first key)."""
        keys: dict[str, tuple[str, bytes]] = {}
        for entry in (e.strip() for e in text.replace("\n", ",").split(",")):
            if not entry or entry.startswith("#"):
                continue
            parts = entry.split(":")
            if len(parts) != 3:
                raise KeyStoreError(f"a data key is ID:SUITE:BASE64URL, got {entry[:20]!r}...")
            kid, key_suite, b64 = parts
            if not KEY_ID.match(kid):
                raise KeyStoreError(f"data key id {kid!r}: 1-16 letters, digits, '-' or '_'")
            if key_suite not in SUITES:
                raise KeyStoreError(f"data key {kid}: suite must be {' or '.join(SUITES)}, got {key_suite!r}")
            try:
                secret = base64.urlsafe_b64decode(b64 + "=" * (-len(b64) % 4))
            except (ValueError, TypeError):
                raise KeyStoreError(f"data key {kid}: not base64url") from None
            if len(secret) != SUITES[key_suite]:
                raise KeyStoreError(f"data key {kid}: {key_suite} needs {SUITES[key_suite]} bytes, got {len(secret)}")
            if kid in keys:
                raise KeyStoreError(f"data key id {kid} appears twice")
            keys[kid] = (key_suite, secret)
        if not current:
            current = next((k for k, (s, _) in keys.items() if suite is None or s == suite), "")
            if not current:
                raise KeyStoreError(f"no {suite} data key among the keys; add one (`gi-service keys generate`)")
        return cls(keys, current)

    @classmethod
    def from_file(cls, path: Path, current: str = "", *, suite: str | None = None) -> "SoftwareKeyStore":
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise KeyStoreError(f"cannot read the data key file {path}: {exc.strerror}") from None
        return cls.from_setting(text, current, suite=suite)

    def current_key_id(self) -> str:
        return self._current

    def key_ids(self) -> list[str]:
        return list(self._keys)

    def _key(self, key_id: str) -> _Key:
        try:
            return self._keys[key_id]
        except KeyError:
            raise KeyStoreError(f"data key {key_id!r} is not in the key store; add it back to GI_DATA_KEYS "
                                "(a key may be removed only after `gi-service keys rotate-data`)") from None

    def suite_of(self, key_id: str) -> str:
        return self._key(key_id).suite

    def encrypt(self, key_id: str, plaintext: bytes, aad: bytes) -> bytes:
        key = self._key(key_id)
        nonce = os.urandom(NONCE_BYTES)  # 96-bit random nonces: far below the 2^32 messages per key limit
        if key.suite == AES_GCM:
            return nonce + AESGCM(key.secret).encrypt(nonce, plaintext, aad)
        return nonce + sm4_gcm_encrypt(key.secret, nonce, plaintext, aad)

    def decrypt(self, key_id: str, blob: bytes, aad: bytes) -> bytes:
        key = self._key(key_id)
        nonce, data = blob[:NONCE_BYTES], blob[NONCE_BYTES:]
        if len(nonce) != NONCE_BYTES:
            raise DecryptionFailed("ciphertext too short")
        if key.suite == AES_GCM:
            try:
                return AESGCM(key.secret).decrypt(nonce, data, aad)
            except InvalidTag:
                raise DecryptionFailed("the data does not authenticate under its key") from None
        return sm4_gcm_decrypt(key.secret, nonce, data, aad)


def new_key(key_id: str, suite: str) -> str:
    """A fresh ``ID:SUITE:BASE64URL`` entry."""
    return f"{key_id}:{suite}:" + base64.urlsafe_b64encode(secrets.token_bytes(SUITES[suite])).decode().rstrip("=")


def new_development_keys() -> str:
    """instance/data_keys: one key of each suite, so switching GI_CRYPTO_SUITE keeps old rows readable."""
    return new_key("D1", AES_GCM) + "," + new_key("S1", SM4_GCM)


def from_settings(settings) -> SoftwareKeyStore:
    """The key store the settings describe (finalize() has filled or checked them)."""
    suite = SUITE_FOR_CRYPTO[settings.crypto_suite]
    if settings.data_keys_file is not None:
        return SoftwareKeyStore.from_file(settings.data_keys_file, settings.data_key_id, suite=suite)
    return SoftwareKeyStore.from_setting(settings.data_keys, settings.data_key_id, suite=suite)
