"""gunicorn's production configuration for gi-service.

    gunicorn -c python:gi_service.gunicorn_conf gi_service.wsgi:app

Every value comes from a GI_* environment variable with a production default:

==================  ===========================  =================================================
GI_HOST / GI_PORT   127.0.0.1 / 8000             where to listen (behind nginx: keep 127.0.0.1)
GI_WORKERS          2 x cores + 1, at most 12    worker processes (each one holds a DB pool)
GI_THREADS          4                            threads per worker (gthread); requests wait on
                                                 PostgreSQL, so a few threads keep a core busy
GI_WORKER_CLASS     gthread                      any gunicorn worker class
GI_TIMEOUT          30                           seconds before a silent worker is restarted
GI_MAX_REQUESTS     10000 (0: never)             a worker is recycled after this many requests,
                                                 with 10 % random jitter so they do not all
                                                 restart at once
GI_ACCESS_LOG       off                          1/true: one line per request on stdout (nginx
                                                 usually logs them already; it costs throughput)
GI_LOG_LEVEL        INFO                         gunicorn's error log level, as the app's
GI_CONTROL_SOCKET   off                          gunicorn >= 25's `gunicornc` control socket; its
                                                 default is one path per user, which two
                                                 instances on a host would fight over: give a
                                                 path per instance to enable it
==================  ===========================  =================================================

The app is preloaded in the master: a refused production setting stops gunicorn at once with
its message, workers fork with the code already imported and the county boundaries of the place
lookups loaded (gi_service.wsgi; fast restarts for max_requests, no slow first lookup), and
each worker drops the database connections it inherited (none are opened before the fork, but
the pool must never be shared across processes).
"""
from __future__ import annotations

import os


def _env_int(name: str, default: int, minimum: int = 0) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SystemExit(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise SystemExit(f"{name} must be >= {minimum}, got {value}")
    return value


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))  # the cores this process may run on (containers, taskset)
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


MAX_DEFAULT_WORKERS = 12   # workers x threads bounds the PostgreSQL connections (default max 100)

_host = os.environ.get("GI_HOST", "").strip() or "127.0.0.1"
_port = _env_int("GI_PORT", 8000, minimum=1)
bind = [f"[{_host}]:{_port}" if ":" in _host else f"{_host}:{_port}"]

workers = _env_int("GI_WORKERS", min(2 * _cores() + 1, MAX_DEFAULT_WORKERS), minimum=1)
worker_class = os.environ.get("GI_WORKER_CLASS", "").strip() or "gthread"
threads = _env_int("GI_THREADS", 4, minimum=1)
timeout = _env_int("GI_TIMEOUT", 30, minimum=1)
graceful_timeout = 30
keepalive = 5              # seconds an idle keep-alive connection (from nginx) stays open

max_requests = _env_int("GI_MAX_REQUESTS", 10_000)
max_requests_jitter = max_requests // 10

preload_app = True

accesslog = "-" if _env_flag("GI_ACCESS_LOG") else None
errorlog = "-"
loglevel = (os.environ.get("GI_LOG_LEVEL", "").strip() or "info").lower()
proc_name = "gi-service"

_control = os.environ.get("GI_CONTROL_SOCKET", "").strip()
if _control:
    control_socket = _control
else:
    control_socket_disable = True    # ignored by gunicorn < 25, which has no control socket

# The heartbeat file each worker touches: on tmpfs it never waits on a slow disk.
if os.path.isdir("/dev/shm"):
    worker_tmp_dir = "/dev/shm"


def post_fork(server, worker):  # noqa: ARG001 - gunicorn's hook signature
    """Forget the database connections inherited from the master (SQLAlchemy's rule for forks)."""
    import sys

    wsgi = sys.modules.get("gi_service.wsgi")
    if wsgi is not None:
        wsgi.app.extensions["gi_engine"].dispose(close=False)
    # The check log starts its own flusher and takes its own id block in this process on first use
    # (services/checklog.py); nothing of the master's is reused.


def worker_exit(server, worker):  # noqa: ARG001 - gunicorn's hook signature
    """Write the checks this worker answered but had not written yet (SIGTERM, recycling, shutdown)."""
    from gi_service.services import checklog

    checklog.close_all()
