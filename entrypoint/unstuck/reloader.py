"""The reload server supervisord runs: holds the port, watches files, swaps worker generations.

uvicorn's `--reload` restarts one worker in place: the port is dark while the new one imports, a failed
import leaves requests hanging, a worker that dies without a file change stays dead, and an open stream
blocks the restart forever. This process keeps the listening socket for its whole life (so connections
queue instead of being refused), starts each new generation beside the old one, and retires the old one
only when the new one serves its app or unstuck's error page. uvicorn still serves HTTP in each worker
and watchfiles still watches; what is written here is only the generation hand-over, crash backoff and
state reporting, none of which those libraries do.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import uvicorn
import watchfiles

from unstuck import dependencies, mounts, state
from unstuck.config import Settings
from unstuck.failure import Failure
from unstuck.forked import WarmProcesses
from unstuck.logs import log
from unstuck.watch_filter import WatchFilter

# A worker that served this long before dying was not crash-looping: its crash restarts at once.
STABLE_AFTER_S = 10.0
# While the first import is still running after this long, an error responder answers "starting".
SLOW_START_S = 0.8
# How long a retired worker may take beyond the grace period before it is killed.
KILL_MARGIN_S = 1.0
# watchfiles yields a batch once no new change came for this long (its default, 50 ms, is most of a
# warm reload's latency; editors write a file in well under this).
WATCH_STEP_MS = 20
# A batch with a watched file missing (vim renames it away, then writes the new one), a new directory or
# this many files (a checkout) waits this long for the rest before reloading, so half a save is never
# reported broken.
SETTLE_S = 0.3
BURST_FILES = 10


@dataclass(eq=False)
class Worker:
    proc: subprocess.Popen
    kind: str  # "app" or "responder"
    trigger: str
    started: float = field(default_factory=time.monotonic)
    ready_at: float | None = None
    failure: Failure | None = None
    stopping: bool = False
    kill_at: float | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid


def describe_changes(changes: set[tuple[watchfiles.Change, str]], root: Path) -> str:
    names = sorted({(os.path.relpath(p, root) if p.startswith(str(root)) else p, c.name) for c, p in changes})
    head = ", ".join(f"{name} {kind}" for name, kind in names[:3])
    return head + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


def backoff_delay(crashes: int, cap: float) -> float:
    """0 s for the first crash in a row, then 1, 2, 4 ... s up to the cap."""
    return 0.0 if crashes <= 1 else min(2.0 ** (crashes - 2), cap)


class Reloader:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.events: queue.SimpleQueue = queue.SimpleQueue()  # put() is safe from signal handlers
        self.current: Worker | None = None  # the generation accepting connections
        self.pending: Worker | None = None  # the app generation importing/starting beside it
        self.retiring: list[Worker] = []
        self.crashes = 0
        self.restart_at: float | None = None
        self.slow_start_at: float | None = None
        self.stopping = False
        self.stop_watching = threading.Event()
        self.reload_started: float | None = None
        self.last_reload: dict | None = None
        self.sock = None
        self.warm: WarmProcesses | None = None  # forks workers with third-party modules preloaded
        self.unsettled: set = set()  # changes waiting for an editor's save to complete
        self.settle_at: float | None = None
        self.installing = False
        self.install_again = False
        self.deps_error: str | None = None

    # -- process management -------------------------------------------------------------------------

    def spawn(self, kind: str, trigger: str, failure: Failure | None = None) -> Worker:
        read_fd, write_fd = os.pipe()
        failure_data = failure.to_dict() if failure else None
        proc = self.warm.fork(write_fd, failure_data)
        if proc is None:  # no warm process (yet): a fresh interpreter
            args = [sys.executable, "-m", "unstuck", "worker", "--listen-fd", str(self.sock.fileno()),
                    "--report-fd", str(write_fd), "--parent-pid", str(os.getpid())]
            if failure_data is not None:
                args += ["--failure", json.dumps(failure_data)]
            proc = subprocess.Popen(args, pass_fds=(self.sock.fileno(), write_fd), cwd=str(self.settings.app_dir))
        os.close(write_fd)
        worker = Worker(proc, kind, trigger, failure=failure)
        threading.Thread(target=self._read_reports, args=(worker, read_fd), daemon=True).start()
        log.debug("started %s worker pid %d (%s, %s)", kind, proc.pid, trigger,
                  "forked" if not isinstance(proc, subprocess.Popen) else "spawned")
        return worker

    def _read_reports(self, worker: Worker, read_fd: int) -> None:
        with os.fdopen(read_fd) as reports:
            for line in reports:
                try:
                    self.events.put(("report", worker, json.loads(line)))
                except ValueError:
                    continue
        self.events.put(("exit", worker, worker.proc.wait()))

    def retire(self, worker: Worker | None) -> None:
        if worker is None or worker.stopping:
            return
        worker.stopping = True
        worker.kill_at = time.monotonic() + self.settings.grace + KILL_MARGIN_S
        self.retiring.append(worker)
        try:
            worker.proc.send_signal(signal.SIGTERM)  # uvicorn: stop accepting, finish requests within grace
        except ProcessLookupError:
            pass

    # -- generations --------------------------------------------------------------------------------

    def start_app(self, trigger: str) -> None:
        """Start a new app generation beside the current one; the newest saved code always wins."""
        if self.pending is not None:
            log.info("newer change while a reload was in progress: restarting that reload")
            # SIGTERM, not SIGKILL: it may already accept connections, which must be answered. An import
            # in progress dies at once (Python keeps SIGTERM's default action until uvicorn runs).
            self.retire(self.pending)
        self.restart_at = None
        self.reload_started = time.monotonic()
        self.pending = self.spawn("app", trigger)
        self.slow_start_at = time.monotonic() + SLOW_START_S if self.current is None else None
        self.publish()

    def promote(self, worker: Worker) -> None:
        if self.current is not worker:
            self.retire(self.current)
            self.current = worker
        if self.pending is worker:
            self.pending = None
        self.slow_start_at = None

    def show(self, failure: Failure) -> None:
        """Put an error responder in front (no app code is imported in it)."""
        self.promote(self.spawn("responder", failure.phase, failure))

    def on_ready(self, worker: Worker, report: dict) -> None:
        worker.ready_at = time.monotonic()
        if worker is not self.pending or self.stopping:
            return
        self.warm.learn(report.get("modules") or [])
        took = worker.ready_at - (self.reload_started or worker.started)
        was_broken = self.current is not None and self.current.failure is not None
        self.promote(worker)
        self.last_reload = {"trigger": worker.trigger, "seconds": round(took, 3), "at": time.time(), "ok": True}
        if worker.trigger == "startup":
            log.info("serving %s on http://%s:%d (started in %.3f s, import %.3f s)", self.settings.app_module,
                     self.settings.host, self.settings.port, took, report.get("import_s", 0.0))
        else:
            log.info("reloaded in %.3f s%s (%s)", took, ", app fixed" if was_broken else "", worker.trigger)
        self.publish()

    def on_failed(self, worker: Worker, report: dict) -> None:
        worker.failure = Failure.from_dict(report.get("failure") or {})
        worker.ready_at = time.monotonic()
        if worker is self.pending:
            took = worker.ready_at - (self.reload_started or worker.started)
            self.promote(worker)
            self.last_reload = {"trigger": worker.trigger, "seconds": round(took, 3), "at": time.time(), "ok": False}
            log.error("app broken after %s: %s; serving the error page (503) until a fix is saved",
                      worker.trigger, worker.failure.headline())
            log.debug("%s", worker.failure.traceback)
        self.publish()

    def on_exit(self, worker: Worker, code: int) -> None:
        if worker in self.retiring:
            self.retiring.remove(worker)
        if worker.stopping or self.stopping:
            return
        now = time.monotonic()
        lived = now - worker.ready_at if worker.ready_at else 0.0
        was_pending = self.pending is worker
        if was_pending:
            self.pending = None
        if self.current is worker:
            self.current = None
        # Consecutive crashes back off; one after a long healthy run does not.
        self.crashes = 1 if lived >= STABLE_AFTER_S else self.crashes + 1
        delay = backoff_delay(self.crashes, self.settings.backoff_max)
        when = "now" if delay == 0 else f"in {delay:g} s"
        what = "the app process" if worker.kind == "app" else "the error responder"
        log.warning("%s (pid %d) %s; restarting %s", what, worker.pid, describe_exit(code),
                    when if delay == 0 else f"{when} (crash {self.crashes} in a row)")
        # The port says why while nothing serves the app, and when a save made the app die while loading
        # (like a failed import, that replaces the previous version).
        if worker.kind == "app" and (was_pending or (self.current is None and delay > 0)):
            during = " while loading" if was_pending and worker.ready_at is None else ""
            self.show(Failure("crash", "WorkerExited", f"the app process {describe_exit(code)}{during}; "
                                                       f"restarting {when}"))
        if delay == 0:
            self.start_app("restart after crash")
        else:
            self.restart_at = now + delay
        self.publish()

    def on_changes(self, changes) -> None:
        self.unsettled |= changes
        missing = any(not os.path.exists(path) for _, path in changes)
        new_dir = any(os.path.isdir(path) for _, path in changes)
        if missing or new_dir or len(changes) >= BURST_FILES:
            self.settle_at = time.monotonic() + SETTLE_S
        elif self.settle_at is None:
            self.apply_changes()

    def apply_changes(self) -> None:
        changes, self.unsettled, self.settle_at = self.unsettled, set(), None
        what = describe_changes(changes, self.settings.app_dir)
        log.info("change detected: %s", what)
        self.crashes = 0  # a fix must not wait out the backoff of the broken code
        if any(dependencies.is_dependency_file(path) for _, path in changes):
            self.install_dependencies()
        self.start_app(what)

    # -- dependencies -------------------------------------------------------------------------------

    def install_dependencies(self) -> None:
        if self.installing:  # one pip at a time; what changes meanwhile is looked at when it is done
            self.install_again = True
            return
        paths = dependencies.pending(self.settings.app_dir)
        if not paths:
            return
        self.installing = True
        self.publish()
        dependencies.install(paths, self.settings.app_dir, lambda outcome: self.events.put(("installed", None, outcome)))

    def on_installed(self, outcome) -> None:
        self.installing = False
        if outcome.ok:
            self.deps_error = None
            log.info("dependencies installed from %s in %.1f s; restarting the app", ", ".join(outcome.files),
                     outcome.seconds)
            self.warm.rebuild()  # its preloaded modules may be the old versions
            self.start_app("dependencies installed")
        else:
            self.deps_error = f"pip install failed for {', '.join(outcome.files)}: {outcome.error}"
            log.error("%s; the previous environment keeps serving", self.deps_error.replace("\n", " | "))
        if self.install_again:
            self.install_again = False
            self.install_dependencies()
        self.publish()

    def on_timers(self) -> None:
        now = time.monotonic()
        if self.settle_at is not None and now >= self.settle_at and not self.stopping:
            self.apply_changes()
        if self.restart_at is not None and now >= self.restart_at:
            self.start_app("restart after crash")
        if self.slow_start_at is not None and now >= self.slow_start_at:
            self.slow_start_at = None
            if self.current is None and self.pending is not None:
                self.show(Failure("starting", "Starting", f"importing {self.settings.app_module} "
                                  f"(for more than {SLOW_START_S:g} s)"))
                self.publish()
        for worker in list(self.retiring):
            if worker.kill_at is not None and now >= worker.kill_at and worker.proc.poll() is None:
                log.warning("pid %d did not stop within %.1f s; killing it", worker.pid, self.settings.grace)
                worker.kill_at = None
                worker.proc.kill()

    def next_timeout(self) -> float:
        deadlines = [t for t in (self.restart_at, self.slow_start_at, self.settle_at) if t is not None]
        deadlines += [w.kill_at for w in self.retiring if w.kill_at is not None]
        if not deadlines:
            return 1.0
        return max(0.0, min(deadlines) - time.monotonic())

    # -- state --------------------------------------------------------------------------------------

    def current_state(self) -> str:
        if self.stopping:
            return "stopping"
        cur = self.current
        if cur is None or (cur.failure is not None and cur.failure.phase == "starting"):
            return "starting"
        if self.pending is not None:
            return "reloading"
        return "broken" if cur.failure is not None else "serving"

    def publish(self) -> None:
        cur = self.current
        failure = cur.failure if cur is not None else None
        try:
            state.write(self.settings.state_file, state=self.current_state(), app_module=self.settings.app_module,
                        port=self.settings.port, error=failure.headline() if failure else None,
                        failure=failure.to_dict() if failure else None, last_reload=self.last_reload,
                        crashes=self.crashes, worker_pid=cur.pid if cur else None,
                        warm_modules=len(self.warm.current.modules) if self.warm.current else None,
                        installing=self.installing, dependencies_error=self.deps_error,
                        pending_pid=self.pending.pid if self.pending else None)
        except OSError as exc:
            log.debug("cannot write state file: %s", exc)

    # -- main loop ----------------------------------------------------------------------------------

    def bind(self, timeout: float = 15.0):
        """Bind the port, waiting out a predecessor that still holds it (e.g. after a kill -9)."""
        config = uvicorn.Config(app=None, host=self.settings.host, port=self.settings.port)
        deadline = time.monotonic() + timeout
        while True:
            try:
                return config.bind_socket()  # logs the error and exits on failure
            except SystemExit:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.25)

    def watch(self) -> None:
        roots = [self.settings.app_dir]
        decision = mounts.decide_here(roots, self.settings.force_polling)
        if decision.poll:
            log.info("watching %s by polling every %d ms: %s", ", ".join(map(str, roots)), self.settings.poll_ms,
                     decision.reason)
        else:
            log.info("watching %s with inotify: %s", ", ".join(map(str, roots)), decision.reason)
        flt = WatchFilter(roots, self.settings.watch_patterns, self.settings.ignore_patterns)
        for changes in watchfiles.watch(*roots, watch_filter=flt, stop_event=self.stop_watching,
                                        force_polling=decision.poll, poll_delay_ms=self.settings.poll_ms,
                                        step=WATCH_STEP_MS,
                                        raise_interrupt=False):
            self.events.put(("changes", None, changes))

    def request_stop(self, signum, frame) -> None:
        self.events.put(("stop", None, signum))

    def stop(self) -> None:
        self.stopping = True
        self.stop_watching.set()
        log.info("stopping")
        self.publish()
        for worker in [self.current, self.pending, *self.retiring]:
            if worker is not None:
                self.retire(worker)

    def alive(self) -> list[Worker]:
        return [w for w in {self.current, self.pending, *self.retiring} if w is not None and w.proc.poll() is None]

    def run(self) -> int:
        self.sock = self.bind()
        self.warm = WarmProcesses(self.sock.fileno(), self.settings.run_dir / "preload.txt", self.events,
                                  self.settings.warm)
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        threading.Thread(target=self.watch, daemon=True, name="watch").start()
        self.start_app("startup")
        self.install_dependencies()  # files changed since the image was built (or last install)
        self.warm.start(self.warm.remembered())
        while not self.stopping or self.alive():
            try:
                kind, worker, payload = self.events.get(timeout=self.next_timeout())
            except queue.Empty:
                kind = None
            if kind == "stop":
                if not self.stopping:
                    self.stop()
            elif kind == "changes" and not self.stopping:
                self.on_changes(payload)
            elif kind == "report":
                event = payload.get("event")
                if event == "ready":
                    self.on_ready(worker, payload)
                elif event == "failed":
                    self.on_failed(worker, payload)
            elif kind == "exit":
                self.on_exit(worker, payload)
            elif kind == "installed":
                self.on_installed(payload)
            elif kind == "warm_ready":
                self.warm.on_ready(worker, payload)
                self.publish()
            elif kind == "warm_exit":
                self.warm.on_exit(worker, self.stopping)
            self.on_timers()
        log.info("stopped")
        return 0
