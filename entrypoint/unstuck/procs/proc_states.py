"""One Procfile worker's state machine, with the operating system passed in (proc_worker.py is its shell).

supervisord alone would put a worker that cannot import its code into FATAL after a few tries, restart
it on a save only if something told it to, and stop it with one fixed timeout. Here a worker is kept
running forever: an unexpected exit restarts it with the app's crash backoff, a restart request (a change
batch, an install) stops it gracefully and starts it again at once, and a stop gives it a bounded grace
(SIGTERM, then SIGKILL) before the wrapper exits.
"""

from __future__ import annotations

import signal
from typing import Protocol

from unstuck.backoff import Backoff

RUNNING, BACKOFF, STOPPING, STOPPED = "running", "backoff", "stopping", "stopped"
STARTING = "starting"  # shown for RUNNING until it has run this long: a worker that crashes at start is
STARTED_AFTER_S = 1.0  # never "running" (as supervisord's startsecs)


class Ops(Protocol):
    def now(self) -> float: ...
    def spawn(self) -> None: ...  # start the worker's command
    def signal(self, signum: int) -> None: ...  # to the worker's whole process group


class ProcMachine:
    def __init__(self, ops: Ops, grace: float, backoff_max: float) -> None:
        self.ops = ops
        self.grace = grace
        self.backoff = Backoff(backoff_max)
        self.state = STOPPED
        self.then = "exit"  # what a stop leads to: "restart" or "exit"
        self.started_at: float | None = None
        self.kill_at: float | None = None
        self.restart_at: float | None = None
        self.restarts = 0  # restarts after an exit nobody asked for
        self.reloads = 0  # restarts asked for (saves, installs)
        self.last_exit: int | None = None
        self.restart_delay: float | None = None
        self.exiting = False

    def _spawn(self) -> None:
        self.state, self.restart_at, self.kill_at = RUNNING, None, None
        self.started_at = self.ops.now()
        self.ops.spawn()

    def _terminate(self) -> None:
        self.state = STOPPING
        self.kill_at = self.ops.now() + self.grace
        self.ops.signal(signal.SIGTERM)

    def start(self) -> None:
        if self.state == STOPPED and not self.exiting:
            self._spawn()

    def restart(self) -> None:
        """New code: stop it gracefully, then start it again at once (a backoff in progress is cut short)."""
        if self.exiting:
            return
        self.backoff.reset()
        self.reloads += 1
        if self.state == RUNNING:
            self.then = "restart"
            self._terminate()
        elif self.state == STOPPING:
            self.then = "restart"
        else:
            self._spawn()

    def stop(self) -> None:
        self.exiting = True
        self.then = "exit"
        self.restart_at = None
        if self.state == RUNNING:
            self._terminate()
        elif self.state == BACKOFF:
            self.state = STOPPED

    def exited(self, code: int) -> None:
        self.last_exit = code
        lived = self.ops.now() - self.started_at if self.started_at is not None else 0.0
        if self.state == STOPPING:
            self.kill_at = None
            if self.then == "restart" and not self.exiting:
                self._spawn()
            else:
                self.state = STOPPED
            return
        if self.exiting:
            self.state = STOPPED
            return
        # Nobody asked it to exit: whatever the code, it is restarted, with the app's backoff.
        self.restarts += 1
        delay = self.restart_delay = self.backoff.crashed(lived)
        if delay == 0:
            self._spawn()
        else:
            self.state, self.restart_at = BACKOFF, self.ops.now() + delay

    def shown_state(self) -> str:
        if self.state == RUNNING and self.ops.now() - (self.started_at or 0.0) < STARTED_AFTER_S:
            return STARTING
        return self.state

    def on_timers(self) -> None:
        now = self.ops.now()
        if self.kill_at is not None and now >= self.kill_at:
            self.kill_at = None
            self.ops.signal(signal.SIGKILL)
        if self.restart_at is not None and now >= self.restart_at:
            self._spawn()

    def next_deadline(self) -> float | None:
        started = self.started_at + STARTED_AFTER_S if self.state == RUNNING and self.started_at is not None else None
        if started is not None and started <= self.ops.now():
            started = None
        due = [t for t in (self.kill_at, self.restart_at, started) if t is not None]
        return min(due) if due else None

    @property
    def finished(self) -> bool:
        return self.exiting and self.state == STOPPED
