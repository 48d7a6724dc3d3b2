"""Scaling out (issue 17 §5): consumer checks per second with the verdict lookup on a hot standby, against the
same app reading everything from the primary; CPU per node; replication lag under load.

    python -m bench.scaleout [--seconds 8] [--rounds 3] [--clients 8] [--workers 2] [--threads 4]

Built from scratch on loopback, as the topology tests build it (tests/topology.py: PostgreSQL's server
binaries run as the `postgres` user): a private primary (initdb), a hot standby from pg_basebackup fed by
streaming replication, and two gunicorn instances of the app in their production configuration — one with
GI_DATABASE_REPLICA_URLS naming the standby (the lookup reads the standby within GI_REPLICA_MAX_LAG_MS), one
without (everything on the primary). Both write every check to the primary's check log, as deployed. A
ledger world with an activated batch is made through the services; the load is keep-alive HTTP clients
(threads of this process) asking for the JSON verdict of codes of that batch, the two apps taking turns
round by round (this machine is shared and noisy: medians of the rounds are printed, with the load average).

CPU is read from /proc for each process tree (the app's gunicorn master and workers; each server's postmaster
and backends, the standby's startup/walreceiver included), so "ms of CPU per check" per node is what one
check costs each node. Lag: the standby's replay lag as the primary reports it, and the heartbeat's age on
the standby (see `Lag`), sampled every 0.2 s.
On one 2-core machine no speed-up is expected (every node shares the same two cores): what matters is the
CPU per check per node, from which docs/operations.md's capacity table sizes a national peak.
"""
from __future__ import annotations

import argparse
import http.client
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from bench.load import _procs, tree_cpu

JSON = {"Accept": "application/json", "User-Agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0) Mobile/15E148"}


def _postmaster(data: Path) -> int:
    return int((data / "postmaster.pid").read_text().split("\n", 1)[0])


def _world(primary_url: str, instance: Path, batch_size: int):
    """An authority, an authorized producer, a printer and an activated batch, made through the services on the
    primary; the codes of its marks, and the settings every app instance must share (keys)."""
    from argon2 import PasswordHasher

    from gi_service import create_app
    from gi_service.config import Settings, finalize
    from gi_service.services import accounts
    from tests.factories import Factory
    from tests.verify.conftest import World

    accounts._hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)   # bench accounts only
    settings = finalize(Settings(env="development", instance_path=instance, database_url=primary_url,
                                 public_base_url="http://gi.test", ratelimit_enabled=False))
    app = create_app(settings)
    app.config["TESTING"] = True
    session = Session(app.extensions["gi_engine"], expire_on_commit=False)
    try:
        world = World(Factory(app, session), app.test_client(), app)
        batch = world.batch(batch_size)
        world.activate(batch, 1, batch_size, quantity=batch_size)
        codes = [batch.code(n) for n in range(1, batch_size + 1)]
    finally:
        session.close()
        app.extensions["gi_engine"].dispose()
    return codes, settings


class Lag:
    """Samples, every 0.2 s while running, the standby's replay lag as the primary reports it
    (pg_stat_replication.replay_lag: 0 when the standby has replayed everything) and the age of the
    replication heartbeat on the standby (what the app judges staleness by: it includes up to one beat
    interval, 0.2 s, by design)."""

    def __init__(self, primary_url: str, standby_url: str):
        self.engine = create_engine(standby_url, isolation_level="AUTOCOMMIT")
        self.primary = create_engine(primary_url, isolation_level="AUTOCOMMIT")
        self.samples: list[float] = []
        self.replay: list[float] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "Lag":
        self.samples, self.replay = [], []
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            try:
                with self.engine.connect() as conn:
                    self.samples.append(float(conn.execute(text(
                        "SELECT extract(epoch FROM clock_timestamp() - at) * 1000 FROM replication_heartbeat "
                        "WHERE id = 1")).scalar_one()))
                with self.primary.connect() as conn:
                    self.replay.append(float(conn.execute(text(
                        "SELECT coalesce(max(extract(epoch FROM replay_lag) * 1000), 0) FROM pg_stat_replication"))
                        .scalar_one()))
            except Exception:  # a sample missed under load is not a result
                pass

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)


def load(port: int, codes: list[str], clients: int, seconds: float) -> tuple[int, int]:
    """Keep-alive clients asking for verdicts for `seconds`: (answers 200, other answers)."""
    ok = [0] * clients
    bad = [0] * clients
    deadline = time.monotonic() + seconds

    def client(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        n = i
        while time.monotonic() < deadline:
            conn.request("GET", f"/v/{codes[n % len(codes)]}", headers=JSON)
            resp = conn.getresponse()
            resp.read()
            if resp.status == 200:
                ok[i] += 1
            else:
                bad[i] += 1
            n += clients
        conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(ok), sum(bad)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scaleout", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="length of one measured run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers per app instance")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker")
    parser.add_argument("--batch", type=int, default=500, help="marks in the activated batch the checks read")
    args = parser.parse_args(argv)

    from tests import topology

    problem = topology.missing()
    if problem:
        print(f"bench.scaleout needs PostgreSQL's server binaries, pgbouncer and nginx: {problem}")
        return 2
    topo = topology.Topology()
    try:
        primary_url = topo.start_primary()
        standby_url = topo.add_standby("standby")
        instance = Path(tempfile.mkdtemp(prefix="gi-scaleout-"))
        codes, settings = _world(primary_url, instance, args.batch)
        topology.caught_up(primary_url, standby_url)
        env = {"GI_ENV": "development", "GI_DATABASE_URL": primary_url, "GI_SECRET_KEY": settings.secret_key,
               "GI_MARK_KEYS": settings.mark_keys, "GI_MARK_KEY_ID": settings.mark_key_id,
               "GI_LEDGER_SIGNING_KEY": settings.ledger_signing_key, "GI_DATA_KEYS": settings.data_keys,
               "GI_PUBLIC_BASE_URL": "http://gi.test", "GI_INSTANCE_PATH": str(instance),
               "GI_RATELIMIT_ENABLED": "false", "GI_WORKERS": str(args.workers), "GI_THREADS": str(args.threads),
               "GI_MAX_REQUESTS": "0", "GI_LOG_LEVEL": "WARNING"}
        if os.environ.get("GI_CACHE_DIR"):
            env["GI_CACHE_DIR"] = os.environ["GI_CACHE_DIR"]
        apps = {"reads on the standby": topo.start_app({**env, "GI_DATABASE_REPLICA_URLS": standby_url}),
                "all reads on the primary": topo.start_app(env)}
        masters = {label: proc.pid for label, proc in zip(apps, topo.apps)}
        nodes = {"primary": _postmaster(topo.base / "primary"), "standby": _postmaster(topo.base / "standby")}
        for port in apps.values():                       # warm up: connections, caches, prepared lookups
            load(port, codes, args.clients, 1.0)
        results: dict[str, list[dict]] = {label: [] for label in apps}
        lag = Lag(primary_url, standby_url)
        for r in range(args.rounds):
            order = list(apps) if r % 2 == 0 else list(reversed(apps))
            for label in order:
                before = _procs()
                cpu0 = {"app": tree_cpu(before, masters[label]), **{n: tree_cpu(before, p) for n, p in nodes.items()}}
                t0 = time.monotonic()
                with lag:
                    ok, bad = load(apps[label], codes, args.clients, args.seconds)
                elapsed = time.monotonic() - t0
                after = _procs()
                cpu1 = {"app": tree_cpu(after, masters[label]), **{n: tree_cpu(after, p) for n, p in nodes.items()}}
                results[label].append({"rate": ok / elapsed, "bad": bad, "ok": ok, "lag": list(lag.samples),
                                       "replay": list(lag.replay),
                                       **{f"cpu_{k}": (cpu1[k] - cpu0[k]) * 1000 / max(ok, 1) for k in cpu0}})
        lag.engine.dispose()
        lag.primary.dispose()
        print(f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}; {os.cpu_count()} cores; "
              f"{args.clients} clients; {args.workers}x{args.threads} gunicorn per app; {args.rounds} rounds of "
              f"{args.seconds:g} s (medians)")
        print(f"{'':26s} {'checks/s':>9s} {'app ms/check':>13s} {'primary ms':>11s} {'standby ms':>11s} "
              f"{'replay p50':>11s} {'replay max':>11s} {'beat age p50':>13s} {'errors':>7s}")
        for label, rows in results.items():
            lags = [v for row in rows for v in row["lag"]] or [float("nan")]
            replay = [v for row in rows for v in row["replay"]] or [float("nan")]
            med = lambda key: statistics.median(row[key] for row in rows)  # noqa: E731
            print(f"{label:26s} {med('rate'):9.0f} {med('cpu_app'):13.2f} {med('cpu_primary'):11.2f} "
                  f"{med('cpu_standby'):11.2f} {statistics.median(replay):9.1f}ms {max(replay):9.1f}ms "
                  f"{statistics.median(lags):11.0f}ms {sum(row['bad'] for row in rows):7d}")
        split, single = (results[label] for label in apps)
        ratio = statistics.median(a["rate"] / b["rate"] for a, b in zip(split, single))
        moved = statistics.median(b["cpu_primary"] - a["cpu_primary"] for a, b in zip(split, single))
        print(f"checks/s with the standby answering / all on the primary: {ratio:.2f}x (median of per-round "
              f"ratios); primary CPU per check moved off to the standby: {moved:.2f} ms")
        return 0
    finally:
        topo.stop()


if __name__ == "__main__":
    raise SystemExit(main())
