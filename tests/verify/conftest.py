"""A ledger world with one printed-and-issued batch, and helpers that name its serials and codes."""
from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy import event

from gi_service.db import reader_engine

from gi_service.codes import format_serial, make_code, parse_serial
from tests.factories import LedgerWorld

API = "/api/v1"


@dataclass
class Batch:
    """A batch as the API returned it, with its codes computed like the labels are."""

    data: dict
    keyring: object

    def serial(self, n: int) -> str:
        """The n-th serial (1-based) of the batch."""
        first = parse_serial(self.data["first_serial"])
        return format_serial(first.prefix, first.year, first.seq + n - 1)

    def code(self, n: int) -> str:
        return make_code(self.keyring, self.serial(n), kid=self.data.get("key_id") or self.keyring.active)

    def tag(self, n: int) -> str:
        """`{kid}{tag}`: what the GS1 form of a label carries in `?v=`."""
        code = self.code(n)
        return code[0] + code[16:]


def forged(code: str) -> str:
    """The same code with its last tag character changed: well-formed, wrong MAC."""
    return code[:-1] + ("A" if code[-1] != "A" else "B")


class World(LedgerWorld):
    def __init__(self, factory, client, app):
        super().__init__(factory, client, year=2026)
        self.app = app
        self.keyring = app.extensions["gi_keyring"]

    def batch(self, quantity: int = 100, **request) -> Batch:
        if request:
            batch = self.approve(self.request(quantity, **request)["id"])
            r = self.client.post(f"{API}/batches/{batch['id']}/printed", headers=self.printer.headers, json={})
            assert r.status_code == 200, r.json
            r = self.client.post(f"{API}/batches/{batch['id']}/issue", headers=self.printer.headers, json={})
            assert r.status_code == 200, r.json
            data = self.client.get(f"{API}/batches/{batch['id']}", headers=self.authority.headers).json
        else:
            data = self.printed_and_issued(quantity)
        return Batch(data, self.keyring)

    def activate(self, batch: Batch, first: int, last: int, lot_no: str = "L-1", quantity: int = 100) -> dict:
        r = self.client.post(f"{API}/activations", headers=self.producer.headers,
                             json={"ranges": [{"first": batch.serial(first), "last": batch.serial(last)}],
                                   "lot": self.lot(lot_no, quantity)})
        assert r.status_code == 201, r.json
        return r.json

    def void(self, batch: Batch, n: int, kind: str = "voided") -> None:
        r = self.client.post(f"{API}/voids", headers=self.producer.headers,
                             json={"ranges": [{"first": batch.serial(n)}], "kind": kind, "reason": "test"})
        assert r.status_code == 200, r.json


def verify_world(factory, client, app, reused_world) -> World:
    """The ledger world of `world`, for a fixture that builds a reused world of its own on top of it."""
    return reused_world("verify", lambda: World(factory, client, app),
                        lambda world: world.rebind(factory, client, app=app))


@pytest.fixture
def world(factory, client, app, reused_world) -> World:
    """The ledger world (built once per test process and database, then restored for each test)."""
    return verify_world(factory, client, app, reused_world)


class StatementLog:
    """Every SQL statement an engine (and, on PostgreSQL, its autocommit reader twin) runs while recording."""

    def __init__(self, engine):
        self.engines = [engine] + ([reader_engine(engine)] if engine.dialect.name == "postgresql" else [])
        self.statements: list[str] = []
        for e in self.engines:
            event.listen(e, "before_cursor_execute", self._record)

    def _record(self, conn, cursor, statement, parameters, context, executemany):
        self.statements.append(statement.strip())

    def close(self) -> None:
        for e in self.engines:
            event.remove(e, "before_cursor_execute", self._record)

    def data_statements(self) -> list[str]:
        """Statements other than transaction control (BEGIN, COMMIT, ROLLBACK, SAVEPOINT, PRAGMA, and SET, e.g. the
        check log's ``SET LOCAL synchronous_commit``) and the check log's allocation of a block of check ids (once
        per block, not per check)."""
        skip = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE", "PRAGMA", "SET ")
        return [s for s in self.statements if not s.upper().startswith(skip)
                and "scan_id_blocks" not in s and "sqlite_sequence" not in s]


@pytest.fixture
def sql(app):
    log = StatementLog(app.extensions["gi_engine"])
    yield log
    log.close()


@pytest.fixture
def buffered(app):
    """The app's check log as in production, buffered behind the answers, but flushed only by the test
    (``buffered.flush()``): what a request does and what the flush does can be told apart."""
    return flushed_by_hand(app.extensions["gi_checklog"])


def flushed_by_hand(checklog):
    """A check log that buffers as in production and is written only when the test calls flush()."""
    checklog.synchronous, checklog.interval_s = False, 3600.0
    return checklog
