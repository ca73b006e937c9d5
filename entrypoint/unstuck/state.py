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
        json.dump(data, f, indent=2)
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
