"""Encrypted columns: personal data stored as a versioned envelope naming its key and suite.

An envelope is the text ``gienc:1:<key id>:<suite>:<base64url(nonce || ciphertext || tag)>``. The key id
and suite travel with each value, so a key rotation or a switch of GI_CRYPTO_SUITE leaves old rows
readable (as long as the key store still holds their key), and ``gi-service keys rotate-data`` can find
and re-encrypt what is not under the current key. The associated data is the column's name
(``organisations.contact``): a value copied into another column does not decrypt.

``EncryptedText`` is a SQLAlchemy type: code reads and writes plain ``str``; only the database sees the
envelope. The key store comes from the engine (``install``) — the app and the CLI install theirs.
Nothing searches these columns by value (a blind index would be needed for that).
"""
from __future__ import annotations

import base64

from sqlalchemy import Text, column, select, table, update
from sqlalchemy.engine import Engine
from sqlalchemy.types import TypeDecorator

from .keystore import KeyStore, KeyStoreError

PREFIX = "gienc"
VERSION = "1"

_default: KeyStore | None = None


def install(engine: Engine, keystore: KeyStore) -> None:
    """Use `keystore` for the encrypted columns read and written through `engine` (and as the default for
    engines that have none, e.g. a standby's)."""
    global _default
    engine.dialect.gi_keystore = keystore  # type: ignore[attr-defined]
    _default = keystore


def set_default(keystore: KeyStore) -> None:
    """The key store for engines that have none installed (the CLI's)."""
    global _default
    _default = keystore


def keystore_for(dialect) -> KeyStore:
    store = getattr(dialect, "gi_keystore", None) or _default
    if store is None:
        raise KeyStoreError("no data key store is installed: build the app with create_app() or call "
                            "datacrypt.install(engine, keystore)")
    return store


def is_envelope(value: str | None) -> bool:
    return bool(value) and value.startswith(PREFIX + ":")  # type: ignore[union-attr]


def seal(store: KeyStore, plaintext: str, context: str, key_id: str | None = None) -> str:
    kid = key_id or store.current_key_id()
    blob = store.encrypt(kid, plaintext.encode("utf-8"), context.encode())
    return ":".join((PREFIX, VERSION, kid, store.suite_of(kid), base64.urlsafe_b64encode(blob).decode().rstrip("=")))


def envelope_key_id(value: str) -> str:
    return value.split(":", 4)[2]


def unseal(store: KeyStore, value: str, context: str) -> str:
    parts = value.split(":", 4)
    if len(parts) != 5 or parts[0] != PREFIX:
        raise KeyStoreError(f"{context}: not an encrypted value")
    _prefix, version, kid, suite, b64 = parts
    if version != VERSION:
        raise KeyStoreError(f"{context}: envelope version {version!r} is not known to this release")
    if store.suite_of(kid) != suite:
        raise KeyStoreError(f"{context}: data key {kid} is {store.suite_of(kid)}, the value says {suite}")
    blob = base64.urlsafe_b64decode(b64 + "=" * (-len(b64) % 4))
    return store.decrypt(kid, blob, context.encode()).decode("utf-8")


class EncryptedText(TypeDecorator):
    """A text column stored encrypted (see the module docstring); `context` is ``table.column``."""

    impl = Text
    cache_ok = True

    def __init__(self, context: str) -> None:
        super().__init__()
        self.context = context

    def process_bind_param(self, value: str | None, dialect) -> str | None:
        if value is None:
            return None
        return seal(keystore_for(dialect), value, self.context)

    def process_result_value(self, value: str | None, dialect) -> str | None:
        if value is None:
            return None
        return unseal(keystore_for(dialect), value, self.context)

    def copy(self, **kw):
        return EncryptedText(self.context)


def encrypted_columns() -> list[tuple[str, str]]:
    """(table, column) of every EncryptedText column of the models."""
    from . import models  # noqa: F401  (every table on Base.metadata)
    from .db import Base

    return [(t.name, c.name) for t in Base.metadata.sorted_tables for c in t.columns
            if isinstance(c.type, EncryptedText)]


def rotate(engine: Engine, store: KeyStore, *, batch: int = 500) -> dict[str, int]:
    """Re-encrypt every stored value not under the current key (or not yet encrypted) with the current key,
    `batch` rows per transaction; the number of values rewritten per column."""
    current = store.current_key_id()
    counts: dict[str, int] = {}
    for table_name, column_name in encrypted_columns():
        t = table(table_name, column("id"), column(column_name))
        col, context, done, last_id = t.c[column_name], f"{table_name}.{column_name}", 0, 0
        while True:
            with engine.begin() as conn:
                rows = conn.execute(select(t.c.id, col).where(col.is_not(None), t.c.id > last_id)
                                    .order_by(t.c.id).limit(batch)).all()
                for row_id, value in rows:
                    if is_envelope(value) and envelope_key_id(value) == current:
                        continue
                    plain = unseal(store, value, context) if is_envelope(value) else value
                    conn.execute(update(t).where(t.c.id == row_id).values({column_name: seal(store, plain, context)}))
                    done += 1
            if len(rows) < batch:
                break
            last_id = rows[-1][0]
        counts[context] = done
    return counts
