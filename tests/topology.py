"""A private PostgreSQL topology on loopback for the heavy tier: a primary, streaming standbys, pgbouncer.

Every server runs as the `postgres` user (PostgreSQL and pgbouncer refuse to run as root) in a directory
of its own under /var/tmp, on free ports; `stop()` stops all of them by their data directories and
process ids, whatever state they are in.
"""
from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import create_engine, text

from gi_service import migrate

BIN = Path(os.environ.get("GI_PG_BIN", "/usr/lib/postgresql/15/bin"))
PGBOUNCER = os.environ.get("GI_PGBOUNCER", "/usr/sbin/pgbouncer")
NGINX = os.environ.get("GI_NGINX", "/usr/sbin/nginx")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres() -> list[str]:
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


def as_postgres(*cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run([*_as_postgres(), *cmd], check=True, capture_output=True, text=True, timeout=120)


def require() -> None:
    """Skip without the PostgreSQL backend (as every PostgreSQL-only test does); fail when the machine lacks
    what the topology needs (`make test` and .ci/run install it)."""
    import pytest

    from tests.conftest import PG_URL

    if not PG_URL:
        pytest.skip("topology tests run with the PostgreSQL backend (GI_TEST_DATABASE_URL)")
    if (lacking := missing()) is not None:
        pytest.fail(lacking)


def missing() -> str | None:
    """What this machine lacks to build the topology (None: nothing)."""
    if not (BIN / "initdb").exists():
        return f"PostgreSQL's server binaries are missing in {BIN}"
    if not Path(PGBOUNCER).exists():
        return f"pgbouncer is missing ({PGBOUNCER}): `make test` and .ci/run install Debian's package"
    if not Path(NGINX).exists():
        return f"nginx is missing ({NGINX}): `make test` and .ci/run install Debian's package"
    return None


FAILOVER_SETTINGS = ("server_login_retry", "server_connect_timeout", "query_wait_timeout")


def deploy_pgbouncer_settings(names: tuple[str, ...] = FAILOVER_SETTINGS) -> dict[str, str]:
    """The values deploy/pgbouncer/pgbouncer.ini gives the named [pgbouncer] settings (the failover's), so the
    topology's pgbouncers fail over as the deployed ones do."""
    import configparser

    ini = configparser.ConfigParser(inline_comment_prefixes=(";", "#"), comment_prefixes=(";", "#"))
    ini.read(Path(__file__).resolve().parent.parent / "deploy" / "pgbouncer" / "pgbouncer.ini")
    return {name: ini["pgbouncer"][name] for name in names}


class Topology:
    def __init__(self) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="gi-topology-", dir="/var/tmp"))
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(self.base, pw.pw_uid, pw.pw_gid)
        self.servers: list[Path] = []
        self.ports: dict[str, int] = {}
        self.bouncer_pids: dict[str, Path] = {}
        self.apps: list[subprocess.Popen] = []
        self.nginx_conf: Path | None = None

    def url(self, name: str, db: str = "gi") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.ports[name]}/{db}"

    def start_primary(self, name: str = "primary", **settings: str) -> str:
        data = self.base / name
        port = self.ports[name] = free_port()
        as_postgres(str(BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-locale")
        extra = "".join(f"{k} = {v}\n" for k, v in settings.items())
        with open(data / "postgresql.conf", "a") as conf:
            conf.write(f"port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{self.base}'\n"
                       "wal_level = replica\nmax_wal_senders = 4\nhot_standby = on\nfsync = off\n"
                       f"shared_buffers = 32MB\nmax_connections = 80\n{extra}")
        self.start_server(name)
        engine = create_engine(self.url(name, "postgres"), isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text("CREATE DATABASE gi"))
        engine.dispose()
        engine = create_engine(self.url(name))
        with engine.begin() as conn:
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
        engine.dispose()
        migrate.upgrade(self.url(name))
        return self.url(name)

    def add_standby(self, name: str, primary: str = "primary") -> str:
        data = self.base / name
        as_postgres(str(BIN / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(self.ports[primary]), "-U", "postgres",
                    "-D", str(data), "-R", "-X", "stream", "-c", "fast")
        port = self.ports[name] = free_port()
        with open(data / "postgresql.conf", "a") as conf:
            conf.write(f"port = {port}\ncluster_name = '{name}'\n")
        self.start_server(name)
        return self.url(name)

    def start_server(self, name: str) -> None:
        as_postgres(str(BIN / "pg_ctl"), "-D", str(self.base / name), "-l", str(self.base / f"{name}.log"), "-w",
                    "start")
        self.servers.append(self.base / name)

    def stop_server(self, name: str, mode: str = "immediate") -> None:
        subprocess.run([*_as_postgres(), str(BIN / "pg_ctl"), "-D", str(self.base / name), "-m", mode, "-w", "stop"],
                       capture_output=True, timeout=60)

    def promote(self, name: str) -> None:
        as_postgres(str(BIN / "pg_ctl"), "-D", str(self.base / name), "-w", "promote")

    def start_pgbouncer(self, databases: dict[str, str], name: str = "pgbouncer", **settings: str | int) -> int:
        """A pgbouncer called `name` in transaction pooling in front of the named servers ({db alias: server
        name}), on a free port kept as `ports[name]`; `settings` are added to its [pgbouncer] section. Several
        may run (one per database node, as deployed); `stop()` stops every one."""
        port = self.ports[name] = free_port()
        lines = "".join(f"{alias} = host=127.0.0.1 port={self.ports[server]} dbname=gi user=postgres\n"
                        for alias, server in databases.items())
        pid = self.bouncer_pids[name] = self.base / f"{name}.pid"
        extra = "".join(f"{k} = {v}\n" for k, v in settings.items())
        (self.base / f"{name}.ini").write_text(
            f"[databases]\n{lines}[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
            "auth_type = any\npool_mode = transaction\ndefault_pool_size = 10\nmax_client_conn = 200\n"
            f"pidfile = {pid}\nlogfile = {self.base}/{name}.log\n{extra}")
        as_postgres(PGBOUNCER, "-d", str(self.base / f"{name}.ini"))
        deadline = time.monotonic() + 10
        while not pid.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        return port

    def stop_pgbouncer(self, name: str = "pgbouncer") -> None:
        """Stop the pgbouncer called `name` (SIGTERM, then wait for it to be gone)."""
        pid = self.bouncer_pids.get(name)
        if pid is None or not pid.exists():
            return
        try:
            number = int(pid.read_text().strip())
            os.kill(number, 15)
        except (OSError, ValueError):
            return
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _running(number):
            time.sleep(0.02)

    def start_app(self, env: dict[str, str]) -> int:
        """One gunicorn instance of the app in its production configuration, on a free port."""
        port = free_port()
        proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "python:gi_service.gunicorn_conf",
                                 "gi_service.wsgi:app"], env={**os.environ, **env, "GI_PORT": str(port),
                                                              "GI_HOST": "127.0.0.1"},
                                stdout=subprocess.DEVNULL, stderr=open(self.base / f"app-{port}.log", "w"))
        self.apps.append(proc)
        _wait_http(port, proc)
        return port

    def start_nginx(self, upstreams: list[int], *, bind_upstream: str = "127.0.0.2") -> int:
        """nginx in front of the app instances (deploy/nginx/gi-service.conf, without TLS): it connects to
        them from `bind_upstream`, so the app can tell the proxy from the client."""
        port = free_port()
        servers = "".join(f"    server 127.0.0.1:{p} max_fails=3 fail_timeout=5s;\n" for p in upstreams)
        self.nginx_conf = self.base / "nginx.conf"
        self.nginx_conf.write_text(
            f"pid {self.base}/nginx.pid;\nerror_log {self.base}/nginx-error.log warn;\n"
            "worker_processes 1;\nevents { worker_connections 256; }\n"
            "http {\n  access_log off;\n"
            f"  client_body_temp_path {self.base}/nginx-body;\n  proxy_temp_path {self.base}/nginx-proxy;\n"
            f"  fastcgi_temp_path {self.base}/nginx-fcgi;\n  uwsgi_temp_path {self.base}/nginx-uwsgi;\n"
            f"  scgi_temp_path {self.base}/nginx-scgi;\n"
            f"  upstream gi_service {{\n{servers}    keepalive 16;\n  }}\n"
            f"  server {{\n    listen 127.0.0.1:{port};\n    client_max_body_size 20m;\n"
            "    location / {\n      proxy_pass http://gi_service;\n      proxy_http_version 1.1;\n"
            '      proxy_set_header Connection "";\n      proxy_set_header Host $host;\n'
            "      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n"
            "      proxy_set_header X-Forwarded-Proto $scheme;\n      proxy_next_upstream error timeout;\n"
            f"      proxy_bind {bind_upstream};\n      add_header X-Upstream $upstream_addr always;\n"
            "    }\n  }\n}\n")
        subprocess.run([NGINX, "-c", str(self.nginx_conf), "-p", str(self.base)], check=True, capture_output=True,
                       timeout=30)
        _wait_http(port, None)
        return port

    def stop(self) -> None:
        if self.nginx_conf is not None:
            subprocess.run([NGINX, "-c", str(self.nginx_conf), "-p", str(self.base), "-s", "stop"],
                           capture_output=True, timeout=30)
        for proc in self.apps:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        for name in self.bouncer_pids:
            self.stop_pgbouncer(name)
        for data in reversed(self.servers):
            subprocess.run([*_as_postgres(), str(BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                           capture_output=True, timeout=60)
        shutil.rmtree(self.base, ignore_errors=True)


def _running(pid: int) -> bool:
    """Whether process `pid` still runs: an exited daemon waits as a zombie until init reaps it (here up to a
    second), its sockets already closed."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _wait_http(port: int, proc: subprocess.Popen | None, timeout_s: float = 60) -> None:
    import http.client

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the server on port {port} exited with {proc.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/api/v1/health")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"nothing answered on port {port}")


def caught_up(primary_url: str, standby_url: str, timeout_s: float = 30) -> None:
    """Wait until the standby has replayed everything the primary had written when this was called."""
    primary, standby = create_engine(primary_url), create_engine(standby_url)
    try:
        with primary.connect() as conn:
            target = conn.execute(text("SELECT pg_current_wal_lsn()")).scalar_one()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with standby.connect() as conn:
                if conn.execute(text("SELECT pg_last_wal_replay_lsn() >= CAST(:t AS pg_lsn)"),
                                {"t": target}).scalar():
                    return
            time.sleep(0.05)
        raise AssertionError("the standby did not catch up")
    finally:
        primary.dispose()
        standby.dispose()
