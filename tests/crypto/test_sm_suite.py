"""China's commercial cryptography as a deployment choice (GI_CRYPTO_SUITE=sm): HMAC-SM3 label codes, an SM3
hash chain and SM2-signed checkpoints, and a ledger that switched suite verifying from end to end."""
from __future__ import annotations

import base64
import shutil
import subprocess

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from gi_service import create_app
from gi_service.codes import verify_code
from gi_service.config import ConfigError, Settings, finalize
from gi_service.models import LedgerEvent
from gi_service.services import ledger
from tests.conftest import CACHE_DIR
from tests.factories import Factory
from tests.verify.conftest import World


def make_app(database, tmp_path, suite: str, **overrides):
    settings = finalize(Settings(env="test", instance_path=tmp_path / "instance", database_url=database.url,
                                 secret_key="test-secret-key-" + "x" * 32, cache_dir=CACHE_DIR,
                                 public_base_url="http://gi.test", ratelimit_enabled=False, crypto_suite=suite,
                                 **overrides))
    application = create_app(settings)
    application.config["TESTING"] = True
    return application


@pytest.fixture
def apps(database):
    made = []
    yield made
    for application in made:
        application.extensions["gi_engine"].dispose()
    ledger.configure("sha256")
    database.clear()


def test_a_ledger_that_switched_to_the_sm_suite_verifies_end_to_end(database, tmp_path, apps, cheap_password_hashing):
    """Events written under the international suite, then under the SM suite: does each record its hash (SHA-256,
    then SM3), does the whole chain verify, do SM2 checkpoints verify in the service and in OpenSSL, and are the
    new label codes HMAC-SM3 while the old ones still verify?"""
    intl = make_app(database, tmp_path / "intl", "intl")
    apps.append(intl)
    session = Session(intl.extensions["gi_engine"], expire_on_commit=False)
    world = World(Factory(intl, session), intl.test_client(), intl)
    old_batch = world.batch(5)
    old_code = old_batch.code(1)
    before = session.scalar(select(LedgerEvent.seq).order_by(LedgerEvent.seq.desc()).limit(1))

    sm = make_app(database, tmp_path / "sm", "sm",
                  mark_keys=intl.config["GI_SETTINGS"].mark_keys + ",S:hmac-sm3:" +
                  base64.urlsafe_b64encode(b"s" * 32).decode().rstrip("="), mark_key_id="S")
    apps.append(sm)
    world.client, world.app, world.keyring = sm.test_client(), sm, sm.extensions["gi_keyring"]
    new_batch = world.batch(5)
    session.rollback()
    algs = {e.seq: e.hash_alg for e in session.scalars(select(LedgerEvent))}
    assert {algs[s] for s in algs if s <= before} == {None}            # SHA-256
    assert {algs[s] for s in algs if s > before} == {"sm3"}
    assert new_batch.code(1)[0] == "S" and sm.extensions["gi_keyring"].suite_of("S") == "hmac-sm3"
    assert verify_code(sm.extensions["gi_keyring"], new_batch.code(1)).valid
    assert verify_code(sm.extensions["gi_keyring"], old_code).valid       # printed before the switch

    signer = sm.extensions["gi_signer"]
    assert signer.algorithm == "SM2"
    checkpoint = ledger.create_checkpoint(session, signer)
    session.commit()
    result = ledger.verify(session, signer=signer)
    assert result.ok and result.checkpoints_checked == 1, result.problem
    if shutil.which("openssl") is None:
        pytest.fail("the openssl command line is needed as the outside SM2 peer")
    (tmp_path / "pub.pem").write_text(signer.public_key_pem())
    (tmp_path / "msg").write_bytes(signer.message(checkpoint.seq, checkpoint.hash, checkpoint.created_at))
    (tmp_path / "sig").write_bytes(base64.urlsafe_b64decode(checkpoint.signature))
    ok = subprocess.run(["openssl", "pkeyutl", "-verify", "-in", str(tmp_path / "msg"), "-sigfile",
                         str(tmp_path / "sig"), "-pubin", "-inkey", str(tmp_path / "pub.pem"), "-rawin", "-digest",
                         "sm3", "-pkeyopt", "distid:1234567812345678"], capture_output=True, timeout=60)
    assert ok.returncode == 0, ok.stderr

    # Tampering is still caught under SM3: change one SM3 event's reason.
    event = session.scalar(select(LedgerEvent).where(LedgerEvent.hash_alg == "sm3").limit(1))
    event.reason = "rewritten"
    session.flush()
    broken = ledger.verify(session, signer=signer)
    assert not broken.ok and broken.first_broken_seq == event.seq
    session.rollback()
    session.close()


def test_the_sm_suite_refuses_keys_of_the_other_suite(database, tmp_path, apps):
    """With GI_CRYPTO_SUITE=sm, is an active HMAC-SHA-256 mark key or an Ed25519 signing key refused at start-up,
    saying how to make SM keys?"""
    intl = make_app(database, tmp_path / "intl", "intl")
    apps.append(intl)
    settings = intl.config["GI_SETTINGS"]
    with pytest.raises(ConfigError, match="hmac-sm3"):
        make_app(database, tmp_path / "a", "sm", mark_keys=settings.mark_keys, mark_key_id=settings.mark_key_id)
    sm_key = "S:hmac-sm3:" + base64.urlsafe_b64encode(b"s" * 32).decode().rstrip("=")
    with pytest.raises(ConfigError, match="SM2"):
        make_app(database, tmp_path / "b", "sm", mark_keys=sm_key, mark_key_id="S",
                 ledger_signing_key=settings.ledger_signing_key)
