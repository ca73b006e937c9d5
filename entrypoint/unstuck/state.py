"""The reloader's state (starting, serving, reloading, broken or stopping), published as a small JSON
file for `unstuck status` and the HEALTHCHECK."""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

def write(path: Path, **fields) -> None:
    data = {"updated": time.time(), "pid": os.getpid(), **fields}
    # Atomic replace: a reader never sees half a file.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".state.")
    with os.fdopen(fd, "w") as f:
        # Compact: json's C encoder (indent= takes its pure-Python one: 1.4 instead of 0.8 ms a write, several
        # writes a reload). `unstuck status --json` prints it indented.
        json.dump(data, f, separators=(",", ":"))
    os.replace(tmp, path)


def read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
