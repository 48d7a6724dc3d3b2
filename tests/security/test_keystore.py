"""Personal data at rest: the key store, AES-256-GCM and SM4-GCM, the envelope, and encrypted columns."""
from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from sqlalchemy import text

from gi_service import datacrypt, keystore
from gi_service.config import ConfigError, Settings, finalize
from gi_service.keystore import AES_GCM, SM4_GCM, DecryptionFailed, KeyStoreError, SoftwareKeyStore
from gi_service.models import Organisation

SM4_KEY = bytes.fromhex("0123456789abcdeffedcba9876543210")


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_sm4_matches_the_standard_vector():
    """Does the SM4 block cipher we encrypt with give GB/T 32907-2016's example ciphertext (one block, and the
    same block encrypted 1,000,000 times)?"""
    enc = Cipher(algorithms.SM4(SM4_KEY), modes.ECB()).encryptor()
    assert enc.update(SM4_KEY).hex() == "681edf34d206965e86b3e94f536e4246"
    block = SM4_KEY
    enc = Cipher(algorithms.SM4(SM4_KEY), modes.ECB()).encryptor()
    for _ in range(1_000_000):
        block = enc.update(block)
    assert block.hex() == "595298c7c6fd271f0402f804c33d3f66"


@pytest.mark.parametrize("suite", [AES_GCM, SM4_GCM])
def test_gcm_round_trip_and_tamper(suite):
    """Does each suite's AEAD give back the plaintext, and refuse a flipped bit, another column's associated data
    and another key?"""
    store = SoftwareKeyStore.from_setting(keystore.new_key("K1", suite) + "," + keystore.new_key("K2", suite), "K1")
    blob = store.encrypt("K1", "张三 13800138000".encode(), b"organisations.contact")
    assert store.decrypt("K1", blob, b"organisations.contact").decode() == "张三 13800138000"
    flipped = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(DecryptionFailed):
        store.decrypt("K1", flipped, b"organisations.contact")
    with pytest.raises(DecryptionFailed):
        store.decrypt("K1", blob, b"consumer_reports.reporter_phone")
    with pytest.raises(DecryptionFailed):
        store.decrypt("K2", blob, b"organisations.contact")


def test_sm4_gcm_is_the_standard_gcm_construction():
    """Is our SM4-GCM the standard GCM construction: the tag checks through OpenSSL's decryptor, and the
    ciphertext is SM4-CTR from counter block nonce || 2 (GCM's first keystream block)?"""
    nonce = bytes(12)
    sealed = keystore.sm4_gcm_encrypt(SM4_KEY, nonce, b"abc", b"ctx")
    dec = Cipher(algorithms.SM4(SM4_KEY), modes.GCM(nonce, sealed[-16:])).decryptor()
    dec.authenticate_additional_data(b"ctx")
    assert dec.update(sealed[:-16]) + dec.finalize() == b"abc"
    # CTR with the counter block nonce || 2 is GCM's keystream for the first plaintext block.
    ctr = Cipher(algorithms.SM4(SM4_KEY), modes.CTR(nonce + b"\x00\x00\x00\x02")).encryptor()
    assert ctr.update(b"abc") == sealed[:3]


@pytest.mark.parametrize("setting, fragment", [
    ("D1:aes-256-gcm", "ID:SUITE:BASE64URL"),
    ("D1:aes-128-gcm:" + b64(bytes(16)), "suite must be"),
    ("D1:aes-256-gcm:" + b64(bytes(16)), "needs 32 bytes"),
    ("D1:sm4-gcm:" + b64(bytes(32)), "needs 16 bytes"),
    ("D 1:sm4-gcm:" + b64(bytes(16)), "letters, digits"),
    ("D1:sm4-gcm:" + b64(bytes(16)) + ",D1:sm4-gcm:" + b64(bytes(16)), "appears twice"),
])
def test_malformed_key_settings_are_refused(setting, fragment):
    with pytest.raises(KeyStoreError, match=fragment):
        SoftwareKeyStore.from_setting(setting)


def test_settings_pick_the_suites_key_and_refuse_a_mismatch(tmp_path):
    """Does GI_CRYPTO_SUITE choose the AEAD of new data, and is a current key of the other suite refused at start?"""
    keys = keystore.new_key("D1", AES_GCM) + "," + keystore.new_key("S1", SM4_GCM)
    intl = finalize(Settings(env="test", instance_path=tmp_path, data_keys=keys))
    sm = finalize(Settings(env="test", instance_path=tmp_path, data_keys=keys, crypto_suite="sm"))
    assert keystore.from_settings(intl).current_key_id() == "D1"
    assert keystore.from_settings(sm).current_key_id() == "S1"
    with pytest.raises(ConfigError, match="must be a sm4-gcm key"):
        finalize(Settings(env="test", instance_path=tmp_path, data_keys=keys, data_key_id="D1", crypto_suite="sm"))
    with pytest.raises(ConfigError, match="not among the keys"):
        finalize(Settings(env="test", instance_path=tmp_path, data_keys=keys, data_key_id="X9"))


def test_key_file_is_read(tmp_path):
    """Can the keys live in a file (GI_DATA_KEYS_FILE) instead of the environment?"""
    path = tmp_path / "keys"
    path.write_text("# data keys\n" + keystore.new_key("F1", SM4_GCM) + "\n")
    settings = finalize(Settings(env="test", instance_path=tmp_path, data_keys_file=path, crypto_suite="sm"))
    assert keystore.from_settings(settings).current_key_id() == "F1"


def test_contacts_are_stored_encrypted(app, factory, session):
    """Is a producer's contact unreadable in the database itself, and read back as typed through the models?"""
    producer = factory.producer()
    org = session.get(Organisation, producer.org.id)
    org.contact = "李四 13912345678"
    session.commit()
    raw = session.execute(text("SELECT contact FROM organisations WHERE id = :id"), {"id": org.id}).scalar_one()
    assert "13912345678" not in raw and "李四" not in raw
    prefix, version, kid, suite, _ = raw.split(":", 4)
    assert (prefix, version, suite) == ("gienc", "1", "aes-256-gcm") and kid == "D1"
    session.expire_all()
    assert session.get(Organisation, org.id).contact == "李四 13912345678"


def test_a_suite_switch_keeps_old_rows_readable_and_rotation_moves_them(app, factory, session):
    """After switching to GI_CRYPTO_SUITE=sm, do rows written under the AES key still read, do new ones use SM4,
    and does the rotation re-encrypt the old ones under the current key?"""
    producer = factory.producer()
    org = session.get(Organisation, producer.org.id)
    org.contact = "王五 020-12345678"
    session.commit()
    store = app.extensions["gi_keystore"]
    sm_store = SoftwareKeyStore({kid: (store.suite_of(kid), store._key(kid).secret) for kid in store.key_ids()}, "S1")
    engine = app.extensions["gi_engine"]
    datacrypt.install(engine, sm_store)
    session.expire_all()
    assert session.get(Organisation, org.id).contact == "王五 020-12345678"
    session.rollback()  # end the read transaction: the rotation commits in its own
    counts = datacrypt.rotate(engine, sm_store, batch=1)
    assert counts["organisations.contact"] == 1
    raw = session.execute(text("SELECT contact FROM organisations WHERE id = :id"), {"id": org.id}).scalar_one()
    assert raw.split(":")[2:4] == ["S1", "sm4-gcm"]
    assert datacrypt.rotate(engine, sm_store)["organisations.contact"] == 0
    session.expire_all()
    assert session.get(Organisation, org.id).contact == "王五 020-12345678"


def test_a_value_moved_to_another_column_does_not_decrypt(app, factory, session):
    """Is the column part of what is authenticated (a contact pasted into a report's phone field is refused)?"""
    store = app.extensions["gi_keystore"]
    sealed = datacrypt.seal(store, "13800138000", "organisations.contact")
    with pytest.raises(DecryptionFailed):
        datacrypt.unseal(store, sealed, "consumer_reports.reporter_phone")
