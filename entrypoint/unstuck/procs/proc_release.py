"""The Procfile's `release` (a project's migrations), run once each time proc_plan.py says so.

It is not a worker: nothing keeps it running. It runs as the workers do (through `sh -c` in APP_DIR, the
same environment, in a session of its own that dies with the reload server), its output goes to the log
prefixed `release |`, and its exit is reported with what its last lines say went wrong (a traceback's
exception and file:line, else its last line).
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import threading
import time
from typing import Callable

from unstuck.errors import traceback_text
from unstuck.config import Settings
from unstuck.processes import die_with_parent
from unstuck.procs.proc_worker import TAIL_LINES, command_env, shell_command

MAX_LINE = 64 * 1024  # a longer line is logged in pieces, so output without newlines never piles up
PREFIX = "release | "
OUTPUT_AFTER_EXIT_S = 2.0  # how long its last output may take to be read once it has exited

OnExit = Callable[[int, float, "str | None"], None]  # (exit code, seconds, what went wrong)


def what_went_wrong(tail: list[str], app_dir) -> str | None:
    failure = traceback_text.parse(tail, app_dir)
    if failure is not None:
        return failure.headline()
    last = next((line.strip() for line in reversed(tail) if line.strip()), None)
    return last[:300] if last else None


class Release:
    def __init__(self, settings: Settings, on_exit: OnExit) -> None:
        self.settings = settings
        self.on_exit = on_exit
        self.proc: subprocess.Popen | None = None

    def start(self, command: str) -> None:
        # The thread that starts it waits for it: PR_SET_PDEATHSIG fires when that thread ends.
        threading.Thread(target=self._run, args=(command,), daemon=True, name="release").start()

    def stop(self) -> None:
        self.signal(signal.SIGTERM)

    def signal(self, signum: int) -> None:
        """To its whole process group (the shell, the command and what it started)."""
        proc = self.proc
        if proc is not None and proc.returncode is None:
            try:
                os.killpg(proc.pid, signum)
            except (ProcessLookupError, PermissionError):
                pass

    def _run(self, command: str) -> None:
        started = time.monotonic()
        tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        try:
            proc = self.proc = subprocess.Popen(
                shell_command(command), cwd=str(self.settings.app_dir), env=command_env(self.settings),
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
                preexec_fn=die_with_parent)
        except OSError as exc:
            self.on_exit(127, 0.0, f"cannot start {command!r}: {exc.strerror or exc}")
            return
        # Its output is read on a thread of its own: the release has exited when its shell has, even when a
        # process it started (in a session of its own, out of reach of the kill below) still holds the pipe.
        reader = threading.Thread(target=self._read, args=(proc, tail), daemon=True, name="release-output")
        reader.start()
        code = proc.wait()
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # what it started and left behind goes with it
        except (ProcessLookupError, PermissionError):
            pass
        reader.join(timeout=OUTPUT_AFTER_EXIT_S)  # its last lines, for the log and what went wrong
        try:
            error = None if code == 0 else what_went_wrong(list(tail), self.settings.app_dir)
        except Exception as exc:  # noqa: BLE001 - the exit must be told, or the workers would wait for it forever
            error = f"its last lines could not be read ({type(exc).__name__}: {exc})"
        self.on_exit(code, time.monotonic() - started, error)

    @staticmethod
    def _read(proc: subprocess.Popen, tail: collections.deque) -> None:
        with proc.stdout:
            # EOF comes when every process holding the pipe has exited or closed it.
            while raw := proc.stdout.readline(MAX_LINE):
                line = raw.decode(errors="replace").rstrip("\r\n")
                tail.append(line)
                print(PREFIX + line, flush=True)
