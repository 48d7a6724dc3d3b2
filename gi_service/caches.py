"""Small in-process caches of what the pages show, one set per database.

Nothing a decision rests on is cached here (a verdict's lookup reads the range, lot, authorization
and GI status every time): only display facts that may change but rarely (a GI's or producer's
name, for at most a minute), facts that never change once written (a mark's ledger events), and
drawings of immutable things (a production area's projected outline).

The caches are kept per database (engine): ids are per database, so two apps in one process (the
tests) never share an entry.
"""
from __future__ import annotations

import threading
import time
import weakref
from collections import OrderedDict
from typing import Any, Callable

from sqlalchemy.orm import Session


class TTLCache:
    """A small thread-safe LRU cache whose entries expire after `ttl` seconds (None: never)."""

    def __init__(self, maxsize: int, ttl: float | None):
        self.maxsize, self.ttl = maxsize, ttl
        self._data: OrderedDict[Any, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Any, make: Callable[[], Any]) -> Any:
        now = time.monotonic()
        with self._lock:
            hit = self._data.get(key)
            if hit is not None and (self.ttl is None or now - hit[0] < self.ttl):
                self._data.move_to_end(key)
                return hit[1]
        value = make()
        with self._lock:
            self._data[key] = (now, value)
            self._data.move_to_end(key)
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)
        return value


DISPLAY_TTL = 60.0                              # seconds a renamed GI or producer may show its old name
CACHES = {
    "gi": (1024, DISPLAY_TTL),
    "producer": (8192, DISPLAY_TTL),
    "timeline": (8192, None),      # ledger events never change: keyed by what selects them
    "map": (2048, 300.0),          # the producer's plots on the public area map change seldom
    "area_outline": (128, None),   # an area's projected outline (areas are immutable)
}
_per_engine: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_per_engine_lock = threading.Lock()


def cache(session: Session, name: str) -> TTLCache:
    """The cache `name` (one of CACHES) of the session's database."""
    bind = session.get_bind()
    caches = _per_engine.get(bind)
    if caches is None:
        with _per_engine_lock:
            caches = _per_engine.get(bind)
            if caches is None:
                caches = {key: TTLCache(size, ttl) for key, (size, ttl) in CACHES.items()}
                _per_engine[bind] = caches
    return caches[name]


def forget(engine) -> None:
    """Drop every cached entry of the database behind `engine` (emptied or restored under a running process:
    its ids now name other rows)."""
    with _per_engine_lock:
        _per_engine.pop(engine, None)
