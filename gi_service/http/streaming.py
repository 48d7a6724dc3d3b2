"""Stream what a writer function writes to a file object, as an iterator of byte chunks.

Print files are produced by writers (`write_pdf_sheets(items, spec, out)`); an HTTP
response wants an iterator. A producer thread runs the writer into a small bounded
queue, so memory stays constant whatever the file's size, and the writer stops when
the client goes away.
"""
from __future__ import annotations

import queue
import threading
from typing import Any, BinaryIO, Callable, Iterator

CHUNK = 64 * 1024
_END = object()


class _Cancelled(Exception):
    pass


class _QueueWriter:
    def __init__(self, q: queue.Queue, stop: threading.Event):
        self._q, self._stop, self._buf = q, stop, bytearray()

    def write(self, data) -> int:
        if self._stop.is_set():
            raise _Cancelled()
        self._buf += data
        if len(self._buf) >= CHUNK:
            self.flush()
        return len(data)

    def flush(self) -> None:
        if self._buf:
            self._put(bytes(self._buf))
            self._buf.clear()

    def _put(self, item: Any) -> None:
        while True:
            if self._stop.is_set():
                raise _Cancelled()
            try:
                self._q.put(item, timeout=0.5)
                return
            except queue.Full:
                continue

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False


def stream_writer(write: Callable[[BinaryIO], Any], *, depth: int = 8) -> Iterator[bytes]:
    """Run `write(out)` in a thread; yield what it writes, in chunks of about 64 KiB."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    out = _QueueWriter(q, stop)

    def run() -> None:
        try:
            write(out)  # type: ignore[arg-type]
            out.flush()
            out._put(_END)
        except _Cancelled:
            pass
        except BaseException as exc:  # handed to the consumer, raised in the request's thread
            try:
                out._put(exc)
            except _Cancelled:
                pass

    thread = threading.Thread(target=run, name="print-file-writer", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)
