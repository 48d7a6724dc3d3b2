"""Crash points for tests that kill the process in the middle of an operation.

`crash_point("approve.after_quota")` does nothing unless the environment variable
GI_FAULT names that point; then the process kills itself with SIGKILL on the spot,
as a power cut or an OOM kill would, so tests can prove a transaction leaves all
of its work or none of it.
"""
from __future__ import annotations

import os
import signal


def crash_point(name: str) -> None:
    if os.environ.get("GI_FAULT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
