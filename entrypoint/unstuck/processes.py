"""What every process of unstuck's does to itself through prctl: its name, dying with its parent, and adopting
its orphaned descendants.

One home for both (the reload server, the warm process and its forks, a generation, a Procfile worker's
wrapper and the command it runs), importing nothing but the standard library: a Procfile wrapper or the
command line has no reason to import uvicorn for them. The prctl options are the same numbers on every
Linux architecture (and go through libc, not a syscall number).
"""

from __future__ import annotations

import ctypes
import os
import signal

PR_SET_PDEATHSIG = 1
PR_SET_NAME = 15
PR_SET_CHILD_SUBREAPER = 36


def set_process_name(name: str) -> None:
    """Name the process in ps/top (its `comm`, 15 bytes): forked workers otherwise carry the warm process's."""
    _prctl(PR_SET_NAME, name.encode()[:15])


def die_with_parent(parent_pid: int | None = None) -> None:
    """SIGKILL when the parent dies: a surviving worker would keep the port and block its successor's bind.
    With `parent_pid`, a parent that died before this took effect ends this process at once. Safe between
    fork and exec (a subprocess's preexec_fn)."""
    if _prctl(PR_SET_PDEATHSIG, signal.SIGKILL) is None:
        return
    if parent_pid is not None and os.getppid() != parent_pid:
        os._exit(1)


def adopt_orphans() -> bool:
    """Become the parent of every descendant whose own parent exits (Linux 3.4+): the warm process then reaps,
    and can signal, a fork its fork made (layer_successor.py). False when the kernel refuses."""
    return _prctl(PR_SET_CHILD_SUBREAPER, 1) == 0


def _prctl(option: int, arg) -> int | None:
    """prctl(option, arg) through libc: its result, or None when there is no libc prctl to call."""
    try:
        return ctypes.CDLL(None, use_errno=True).prctl(option, arg, 0, 0, 0)
    except (OSError, AttributeError):
        return None
