"""When the Procfile's `release` runs and when its workers start, restart or change: a state machine with the
operating system passed in (proc_control.py is its shell), in the style of generations.py.

Heroku's and honcho's semantics, in a dev loop:
- The workers start once the dependencies are installed, never before: a worker started on an empty
  environment only crash-loops (`No module named ...`) until the install ends. The reload server asks for
  their first start when the app first starts, which is after the install; an install in progress defers
  any request until it is done.
- `release` (a project's migrations) runs before the workers first start, after each successful
  dependency install, and after its command changed in the Procfile; the workers (re)start once it has
  exited, whatever its outcome (a worker that needs it says so in its own status).
- A release is never restarted: one that exits 0 is done; a failing one is shown (the log, `unstuck
  status`) and runs again with the next change batch, which is most likely the user's fix.
- One release at a time: requests made while it runs are served once it has exited (one more release
  if one of them needs it, then one restart of the workers).
- A release that hangs (a migration waiting for a lock, a database that never answers) would hold the
  workers and every later save's restart forever: after UNSTUCK_RELEASE_TIMEOUT seconds it is stopped
  (SIGTERM to its process group, SIGKILL after the workers' grace), counted as failed with what hung and
  for how long, and runs again with the next save, as a failing release does.
"""

from __future__ import annotations

import signal
from typing import Protocol

from unstuck.reload.generations import describe_exit
from unstuck.logs import log


class Ops(Protocol):
    def now(self) -> float: ...  # monotonic seconds
    def wall(self) -> float: ...  # epoch seconds, for the status
    def run_release(self, command: str) -> None: ...  # release_exited() is called when it has exited
    def signal_release(self, signum: int) -> None: ...  # to the running release's process group
    def apply_procfile(self) -> None: ...  # supervisord re-reads the workers' programs (changed ones are stopped)
    def start_workers(self) -> None: ...  # start them
    def restart_workers(self) -> None: ...  # the running ones on the new code, the stopped ones (re-read) anew


TIMEOUT_SETTING = "UNSTUCK_RELEASE_TIMEOUT"


class ProcPlan:
    def __init__(self, ops: Ops, release: str | None = None, workers: tuple[str, ...] = (), timeout: float = 0.0,
                 grace: float = 5.0) -> None:
        self.ops = ops
        self.timeout = timeout  # seconds a release may run before it is stopped; 0: no limit
        self.grace = grace  # between its SIGTERM and its SIGKILL
        self.release = release  # the release command, if the Procfile has one
        self.workers = tuple(workers)
        self.started = False  # the workers were started once
        self.installing = False
        self.release_due = True  # the next request runs the release first (the first one does)
        self.update_due = False  # the Procfile changed: supervisord re-reads it before the workers start
        self.queued: str | None = None  # the reason of a request not served yet (an install or a release runs)
        self.running: dict | None = None  # the release in progress: its trigger, start and command
        self.deadline: float | None = None  # when the running release is stopped (monotonic)
        self.kill_at: float | None = None  # when a stopped release that did not exit is killed
        self.last: dict | None = None  # the last release's outcome, for the status
        self.runs = 0

    # -- inputs ---------------------------------------------------------------------------------------

    def request(self, reason: str) -> None:
        """The web app (re)starts (a change batch, an install, the first start): the workers follow."""
        self.queued = reason
        self._advance()

    def procfile_changed(self, release: str | None, workers: tuple[str, ...]) -> None:
        if release is not None and release != self.release:
            self.release_due = True  # an edited release line is meant to run
        self.release, self.workers = release, tuple(workers)
        self.update_due = True

    def install_started(self) -> None:
        self.installing = True

    def installed(self, ok: bool) -> None:
        """The install is done; what it deferred is served by the next request() or settle()."""
        self.installing = False
        if ok:
            self.release_due = True  # new packages may bring new migrations

    def settle(self) -> None:
        """After an install's outcome was handled: serve a request it deferred, if none came since."""
        self._advance()

    def release_exited(self, code: int, seconds: float, error: str | None = None) -> None:
        running = self.running or {}
        trigger, timed_out = running.get("trigger", "?"), running.get("timed_out", False)
        self.running = self.deadline = self.kill_at = None
        ok = code == 0 and not timed_out
        self.last = {"ok": ok, "code": code, "seconds": round(seconds, 3), "at": self.ops.wall(), "trigger": trigger,
                     "error": None if ok else error or describe_exit(code)}
        if timed_out:
            self.last.update(timed_out=True, timeout=self.timeout, error=self.hung(running.get("command"), error))
            log.error("release %s; it runs again with the next save", self.last["error"])
        elif ok:
            log.info("release done in %.1f s (%s)", seconds, trigger)
        else:
            log.error("release %s after %.1f s%s; it runs again with the next save", describe_exit(code), seconds,
                      f": {error}" if error else "")
        if self.queued is not None:
            self._advance()  # asked again meanwhile: served now, with one more release if it needs one
        else:
            self._workers(trigger)

    # -- decisions ------------------------------------------------------------------------------------

    @property
    def failed(self) -> bool:
        return self.last is not None and not self.last["ok"]

    def _advance(self) -> None:
        if self.queued is None or self.installing or self.running is not None:
            return
        reason, self.queued = self.queued, None
        if self.release is not None and (self.release_due or self.failed):
            self.release_due = False
            self.running = {"trigger": reason, "since": self.ops.wall(), "command": self.release}
            self.deadline = self.ops.now() + self.timeout if self.timeout > 0 else None
            self.runs += 1
            log.info("release: running %r (%s); the workers %s once it has exited", self.release, reason,
                     "restart" if self.started else "start")
            self.ops.run_release(self.release)
            return
        self._workers(reason)

    def hung(self, command: str | None, last_line: str | None = None) -> str:
        """What the status and the log say of a release that was stopped: which command, for how long, its
        last words (most often what it waits for), and the setting that gives it longer."""
        said = f" (its last line: {last_line})" if last_line else ""
        return (f"{command!r} hung: it did not exit within {self.timeout:g} s and was stopped{said}; "
                f"set {TIMEOUT_SETTING} to give it longer (0: no limit)")

    # -- timers -----------------------------------------------------------------------------------------

    def next_deadline(self) -> float | None:
        due = [t for t in (self.deadline, self.kill_at) if t is not None]
        return min(due) if due else None

    def on_timers(self) -> bool:
        """Stop a release that outran the timeout (TERM, then KILL after the grace); True when the status
        changed."""
        now = self.ops.now()
        if self.running is not None and self.deadline is not None and now >= self.deadline:
            self.deadline, self.kill_at = None, now + self.grace
            self.running["timed_out"] = True
            log.error("release %r did not exit within %g s: stopping it (SIGTERM, then SIGKILL after %g s); set %s "
                      "to give it longer (0: no limit)", self.running["command"], self.timeout, self.grace,
                      TIMEOUT_SETTING)
            self.ops.signal_release(signal.SIGTERM)
            return True
        if self.running is not None and self.kill_at is not None and now >= self.kill_at:
            self.kill_at = None
            self.ops.signal_release(signal.SIGKILL)
        return False

    def _workers(self, reason: str) -> None:
        updated = self.update_due
        if updated:
            self.update_due = False
            self.ops.apply_procfile()
        if not self.workers:
            self.started = True
            return
        names = ", ".join(self.workers)
        if self.started:
            log.info("restarting %s with the web app (%s)", names, reason)
            self.ops.restart_workers()
        else:
            log.info("starting %s (%s)", names, reason)
            self.ops.start_workers()
        self.started = True

    # -- the status -----------------------------------------------------------------------------------

    def waiting(self) -> str | None:
        """Why the workers are not running yet, if they are not."""
        if self.started or not self.workers:
            return None
        if self.installing:
            return "they start once the dependencies are installed"
        if self.running is not None:
            return "they start once the release has exited"
        return "they start with the app"

    def snapshot(self) -> dict | None:
        if self.release is None and self.last is None:
            return None
        out = {"command": self.release, "runs": self.runs, "last": self.last}
        if self.running is not None:
            out["state"], out["since"] = "running", self.running["since"]
            if self.running.get("timed_out"):
                out["stopping"] = f"it did not exit within {self.timeout:g} s ({TIMEOUT_SETTING})"
        elif self.last is None:
            out["state"] = "waiting"
        else:
            out["state"] = "ok" if self.last["ok"] else "failed"
        return out

