"""Passwords and tokens are stored as the issue demands."""
from __future__ import annotations

from argon2 import extract_parameters

from gi_service.services import accounts


def test_passwords_are_hashed_with_production_strength_argon2id():
    """Does the service (outside the tests' cheap hasher) hash with argon2id at OWASP-level cost?"""
    params = extract_parameters(accounts._DUMMY_HASH)
    assert accounts._DUMMY_HASH.startswith("$argon2id$")
    assert params.memory_cost >= 19 * 1024 and params.time_cost >= 2


def test_tokens_are_stored_as_sha256_only(session, factory):
    """Is a token's plaintext absent from the database, only its SHA-256 kept?"""
    from sqlalchemy import select

    from gi_service.models import ApiToken

    actor = factory.authority()
    row = session.scalar(select(ApiToken).where(ApiToken.user_id == actor.principal.user_id))
    assert actor.token not in (row.token_hash, row.prefix) and len(row.token_hash) == 64
    assert row.prefix == actor.token[:10]
