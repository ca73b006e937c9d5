"""The reload server supervisord runs: holds the port, watches files, owns the worker processes.

uvicorn's `--reload` restarts one worker in place: the port is dark while the new one imports, a failed
import leaves requests hanging, a worker that dies without a file change stays dead, and an open stream
blocks the restart forever. This process keeps the listening socket for its whole life (so connections
queue instead of being refused) and runs each generation of the app beside the previous one.

What to do is decided by the pure state machine in generations.py; this module is the thin shell that
owns what it decides about: processes (forked by the warm process, or spawned), their report pipes and
pidfds, the watcher, the installer, the state file. Everything that happens reaches one queue as an event
(events.py) and is handled on one thread, so nothing here blocks on anything but that queue. Each event
type has one handler (HANDLERS); the machine's events go to the machine, and the actions it returns are
carried out here (generations.carry_out calls this shell's World methods: spawn, signal, serving ...).
"""

from __future__ import annotations

import json
import os
import queue
import signal
import stat
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from unstuck.project import dependencies
from unstuck.app import discovery
from unstuck.generation import handoff
from unstuck.warm import seeds
from unstuck import state
from unstuck import wire
from unstuck.reload import events as ev
from unstuck.config import Settings
from unstuck.errors.failure import Failure
from unstuck.reload.generations import BURST_FILES, Generation, Generations, Policy, carry_out
from unstuck.logs import log
from unstuck.user_files import is_under
from unstuck.seams import uvicorn_seam
from unstuck.procs.proc_control import ProcControl
from unstuck.reload.warm_process_client import WarmProcesses
from unstuck.watching.fingerprint import fingerprint
from unstuck.watching.watch_filter import WatchFilter
from unstuck.watching.watcher import Watcher

# watchfiles yields a batch once no new change came for this long (its default, 50 ms, is most of a
# warm reload's latency; editors write a file in well under this). While edits come in, watch_stream
# shortens it further.
WATCH_STEP_MS = 20
# How long a fork request may go unanswered before a fresh interpreter is started instead.
FORK_REPLY_TIMEOUT_S = 2.0
# How long an app generation may wait for a warm process that is still importing (at container start)
# before a fresh interpreter is started instead. Waiting costs nothing: the warm process imports what a
# fresh interpreter would, and once it is ready the next reloads are warm too.
WARM_WAIT_S = 20.0


@dataclass(eq=False)
class Child:
    """One generation's process as seen from here. A generation whose fork request timed out gets a new
    Child (spawned); the abandoned one's late events are ignored."""

    gen: Generation
    read_fd: int
    popen: subprocess.Popen | None = None
    warm: object | None = None  # the WarmProcess that forked it
    request: int | None = None  # fork request waiting for its reply
    deadline: float | None = None
    pid: int | None = None
    pidfd: int | None = None
    queued_signals: list[int] = field(default_factory=list)
    reports_done: bool = False
    code: int | None = None
    abandoned: bool = False
    write_fd: int | None = None  # while it waits for the warm process to be ready


def send_signal(child: Child, signum: int) -> None:
    """Signal through the pidfd when there is one: unlike a pid, it can never name another process."""
    try:
        if child.pidfd is not None:
            signal.pidfd_send_signal(child.pidfd, signum)
        elif child.popen is not None:
            child.popen.send_signal(signum)  # checks that it has not been reaped yet
        elif child.pid is not None and child.code is None:
            os.kill(child.pid, signum)
    except ProcessLookupError:
        pass


def preload_file(settings: Settings) -> Path:
    """Where the warm process's module list is kept: beside the project environment, whose volume outlives
    the container (a re-created container is warm from its first reload); else the run directory."""
    home = settings.project_env.parent
    return home / "preload.txt" if os.access(home, os.W_OK) else settings.run_dir / "preload.txt"


# The state file is written at most this often: each write takes ~1 ms of a core (overlay file system), and
# a reload's events (changes, started, imported, ready, served) come within milliseconds of each other, on
# the reload's critical path. Readers (`unstuck status`, the HEALTHCHECK) poll; 50 ms late is nothing to them.
PUBLISH_EVERY_S = 0.05


class Reloader:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.events: queue.SimpleQueue = queue.SimpleQueue()  # put() is safe from signal handlers
        self.machine = Generations(self, Policy(grace=settings.grace, backoff_max=settings.backoff_max))
        self.children: dict[int, Child] = {}  # generation id -> its (latest) Child
        self.by_pid: dict[int, Child] = {}  # forked children, by the pid the warm process reports
        self.forks: dict[tuple[int, int], Child] = {}  # (warm pid, request id) -> Child waiting for its fork
        self.waiting: list[Child] = []  # app generations waiting for the warm process to be ready
        # The warm process's app layer (app_layer.py), for the status: ready or not, what it holds or why not.
        self.app_layer: dict = {"ready": False}
        self.abandoned: set[tuple[int, int]] = set()
        self.watcher: Watcher | None = None
        self.sock = None
        self.warm: WarmProcesses | None = None
        self.procs = ProcControl(settings, lambda *exit: self.events.put(ev.ReleaseExited(*exit)))
        self.dependency_set: dict | None = None  # dependencies.check(): the chosen set in words
        # dependencies.check() as of a dependency save (or an install's end), done on the watcher's (or the
        # install's) thread: its tree walks, TOML parsing and hashing must not hold up this loop's timers.
        self._deps_checked: tuple[float, tuple] | None = None  # (when it began, what it returned)
        self._deps_lock = threading.Lock()
        self._pending_paths: list[Path] = []  # what the last check found: what install() installs
        self.published = -1
        self.published_at = float("-inf")

    # -- Ops: what the state machine reads of the world -----------------------------------------------

    def now(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    # -- what the state machine asks of the world (its actions) ----------------------------------------

    def feed(self, event) -> None:
        """Hand an event to the machine and carry out the actions it returns."""
        self.act(self.machine.handle(event))

    def act(self, actions: list) -> None:
        carry_out(actions, self, self.feed)

    def spawn(self, gen: Generation) -> None:
        read_fd, write_fd = os.pipe()
        child = Child(gen, read_fd)
        self.children[gen.id] = child
        starting = self.warm is not None and self.warm.current is None and self.warm.next is not None
        if gen.verifies is not None:  # the plain path, to check what a fast path showed (generations._verify)
            self._popen(child, write_fd, None)
        elif starting and gen.kind == "app":
            child.write_fd, child.deadline = write_fd, self.now() + WARM_WAIT_S
            self.waiting.append(child)
        else:
            self._request_or_popen(child, write_fd)
        threading.Thread(target=self._read_reports, args=(child,), daemon=True, name=f"reports-{gen.id}").start()

    def _request_or_popen(self, child: Child, write_fd: int) -> None:
        failure = child.gen.failure.to_dict() if child.gen.failure else None
        changes = ([[kind, os.path.join(self.settings.app_dir, path)] for kind, path in sorted(child.gen.changes)]
                   if child.gen.changes else None)
        current = self.warm.current if self.warm else None
        request = current.request_fork(write_fd, failure, changes) if current else None
        if request is None:
            self._popen(child, write_fd, failure)
        else:
            os.close(write_fd)
            child.warm, child.request, child.deadline = current, request, self.now() + FORK_REPLY_TIMEOUT_S
            self.forks[(current.pid, request)] = child

    def _stop_waiting(self) -> None:
        """The warm process is ready (or waited for long enough): start what waited for it."""
        waiting, self.waiting = self.waiting, []
        for child in waiting:
            write_fd, child.write_fd, child.deadline = child.write_fd, None, None
            self._request_or_popen(child, write_fd)

    def _popen(self, child: Child, write_fd: int, failure: dict | None) -> None:
        args = [sys.executable, "-m", "unstuck", "worker", "--listen-fd", str(self.sock.fileno()),
                "--report-fd", str(write_fd), "--parent-pid", str(os.getpid())]
        if failure is not None:
            args += ["--failure", json.dumps(failure)]
        child.popen = subprocess.Popen(args, pass_fds=(self.sock.fileno(), write_fd), cwd=str(self.settings.app_dir))
        os.close(write_fd)
        child.pid = child.popen.pid
        try:
            child.pidfd = os.pidfd_open(child.pid)
        except (AttributeError, OSError):
            child.pidfd = None
        # Queued like any other event: not handled in the middle of carrying out the machine's actions.
        self.events.put(ev.Started(child.gen.id, child.pid, self.now(), forked=False))
        self._deliver_queued(child)

    def signal(self, gen: Generation, signum: int) -> None:
        child = self.children.get(gen.id)
        if child is None:
            return
        if child in self.waiting:  # never started: it simply will not be
            self.waiting.remove(child)
            os.close(child.write_fd)  # its reports end here
            child.write_fd, child.code = None, -signum
            self._maybe_exited(child)
        elif child.pid is None:
            child.queued_signals.append(signum)  # its fork reply has not come yet
        else:
            send_signal(child, signum)

    def preflight(self) -> Failure | None:
        from unstuck.project.python_requirement import preflight

        problem = preflight(self.settings.app_dir)
        return Failure("environment", "IncompatiblePython", problem) if problem else None

    def check_dependencies(self) -> None:
        """On the thread that delivers a dependency save (or ends an install): what dependencies_pending()
        will answer. The newest check wins."""
        began = time.monotonic()
        result = dependencies.check(self.settings.app_dir, self.settings.project_env)
        with self._deps_lock:
            if self._deps_checked is None or self._deps_checked[0] <= began:
                self._deps_checked = (began, result)

    def dependencies_pending(self) -> tuple[str, ...]:
        with self._deps_lock:
            checked, self._deps_checked = self._deps_checked, None
        # Checked here only at the start (nothing was saved yet): every later question follows a save or an
        # install that checked already.
        pending, described = checked[1] if checked is not None else dependencies.check(self.settings.app_dir,
                                                                                         self.settings.project_env)
        self._pending_paths = list(pending)
        if described != self.dependency_set:
            self.dependency_set = described  # in the status; in the log here unless an install logs it
            if described and not pending:
                log.info("%s", described["chosen"])
                if described["left_out"]:
                    log.info("%s", described["left_out"])
        return tuple(str(p.relative_to(self.settings.app_dir)) for p in pending)

    def install(self) -> None:
        self.procs.install_started()  # the workers wait for it
        paths = self._pending_paths  # the machine asks right after dependencies_pending()

        def done(outcome, check: bool = True) -> None:
            if check:
                self.check_dependencies()  # what is still pending, on the install's thread
            self.events.put(ev.Installed(outcome.ok, tuple(outcome.files), outcome.seconds, outcome.error,
                                         outcome.summary, outcome.had_env, outcome.warning))

        if not paths:
            done(dependencies.Outcome(True, [], 0.0), check=False)
            return
        dependencies.install(paths, self.settings.app_dir, done)

    def serving(self, gen: Generation | None) -> None:
        handoff.point_current_at(self.settings.run_dir, gen.pid if gen is not None else None)

    def app_label(self) -> str:
        return discovery.target(self.settings.app_module, self.settings.app_dir)

    def learn_modules(self, modules, app_modules=()) -> None:
        self.warm.learn(modules)
        self.warm.learn_app(app_modules)

    def rebuild_warm(self) -> None:
        self.warm.rebuild()

    def prepare_layer(self) -> None:
        self.warm.prepare_layer()

    def restart_procs(self, reason: str) -> None:
        self.procs.on_batch(reason)

    def distrust(self, source: str) -> str:
        return self.warm.distrust(source)

    # -- the reports of one generation ---------------------------------------------------------------

    def _read_reports(self, child: Child) -> None:
        with os.fdopen(child.read_fd) as reports:
            for line in reports:
                try:
                    self.events.put(ev.Report(child, wire.decode_report(line)))
                except wire.BadMessage:
                    continue  # never expected (the same code writes them): not worth a generation
        if child.popen is not None:
            self.events.put(ev.SpawnedExited(child, child.popen.wait()))
        else:
            self.events.put(ev.ReportsClosed(child))

    def _on_report(self, event: ev.Report) -> None:
        child = event.child
        if child.abandoned:
            return
        # The pid: the warm process's word when it came, else the worker's own (in its "started").
        self.feed(ev.from_report(child.gen.id, event.message, child.pid, forked=child.popen is None))

    def _on_reports_closed(self, event: ev.ReportsClosed) -> None:
        event.child.reports_done = True
        self._maybe_exited(event.child)

    def _on_spawned_exited(self, event: ev.SpawnedExited) -> None:
        event.child.reports_done, event.child.code = True, event.code
        self._maybe_exited(event.child)

    def _maybe_exited(self, child: Child) -> None:
        """The machine hears of an exit only once every report the child wrote has been handled."""
        if child.abandoned or not child.reports_done or child.code is None:
            return
        if child.pidfd is not None:
            os.close(child.pidfd)
            child.pidfd = None
        if self.children.get(child.gen.id) is child:
            del self.children[child.gen.id]
        self.feed(ev.Exited(child.gen.id, child.code))

    def _deliver_queued(self, child: Child) -> None:
        for signum in child.queued_signals:
            send_signal(child, signum)
        child.queued_signals.clear()

    # -- warm process events ---------------------------------------------------------------------------

    def _on_forked(self, event: ev.WarmForked) -> None:
        key = (event.warm.pid, event.request)
        child = self.forks.pop(key, None)
        event.warm.forked()
        if child is None:  # we gave up waiting for it and started a fresh interpreter instead
            self.abandoned.discard(key)
            if event.pidfd is not None:
                signal.pidfd_send_signal(event.pidfd, signal.SIGKILL)
                os.close(event.pidfd)
            else:
                os.kill(event.pid, signal.SIGKILL)
            return
        child.pid, child.pidfd, child.request, child.deadline = event.pid, event.pidfd, None, None
        # Every hand-out uses or drops the layer; the next one says when it is ready.
        self.app_layer = {**self.app_layer, "ready": False}
        self.by_pid[event.pid] = child
        self.feed(ev.Started(child.gen.id, event.pid, self.now(), forked=True, source=event.source))
        self._deliver_queued(child)

    def _on_warm_child_exited(self, event: ev.WarmChildExited) -> None:
        child = self.by_pid.pop(event.pid, None)
        event.warm.child_exited()
        if child is not None:
            child.code = event.code
            self._maybe_exited(child)

    def _on_warm_exited(self, event: ev.WarmExited) -> None:
        # Its children died with it (their parent-death signal) and it can no longer tell us: say so here.
        for pid, child in list(self.by_pid.items()):
            if child.warm is event.warm:
                del self.by_pid[pid]
                child.code = -signal.SIGKILL
                self._maybe_exited(child)
        for key, child in list(self.forks.items()):
            if child.warm is event.warm:
                self._fall_back_to_spawn(key, child)
        self.warm.on_exit(event.warm, self.machine.stopping)
        if self.warm.current is None and self.warm.next is None:
            self._stop_waiting()  # nothing to wait for any more

    def _on_warm_ready(self, event: ev.WarmReady) -> None:
        self.warm.on_ready(event.warm, event.message)
        self._stop_waiting()
        self.published = -1

    def _on_warm_layer(self, event: ev.WarmLayer) -> None:
        if event.message.ok:
            log.debug("app layer ready: %d of the app's files imported ahead of the next save%s%s", event.message.files,
                      f", the app loaded up to {event.message.stops_at}" if event.message.stops_at else "",
                      f"; {event.message.mappers}" if event.message.mappers else "")
            self.app_layer = {"ready": True, "files": event.message.files, "imported_s": event.message.seconds,
                              "copies": event.message.copies, "stops_at": event.message.stops_at,
                              "mappers": event.message.mappers}
        else:
            log.debug("no app layer: %s", event.message.why)
            self.app_layer = {"ready": False, "why": event.message.why}
        self.published = -1

    def _fall_back_to_spawn(self, key, child: Child) -> None:
        """The warm process did not answer: start a fresh interpreter with a pipe of its own (the first one
        was handed to the warm process, and a late fork will be killed on arrival)."""
        del self.forks[key]
        self.abandoned.add(key)
        child.abandoned = True
        log.warning("the warm process did not fork within %.0f s; starting a fresh interpreter", FORK_REPLY_TIMEOUT_S)
        read_fd, write_fd = os.pipe()
        fresh = Child(child.gen, read_fd, queued_signals=child.queued_signals)
        self.children[child.gen.id] = fresh
        failure = child.gen.failure.to_dict() if child.gen.failure else None
        self._popen(fresh, write_fd, failure)
        threading.Thread(target=self._read_reports, args=(fresh,), daemon=True).start()

    # -- watching ---------------------------------------------------------------------------------------

    def start_watching(self) -> None:
        roots = [self.settings.app_dir]
        self.watcher = Watcher(roots, WatchFilter(roots, self.settings.watch_patterns, self.settings.ignore_patterns),
                               lambda changes: self.events.put(self.describe_batch(changes)),
                               force_polling=self.settings.force_polling, poll_ms=self.settings.poll_ms,
                               safety_ms=self.settings.safety_poll_ms,
                               step_ms=WATCH_STEP_MS, on_state=lambda state: self.events.put(ev.WatcherState(state)))
        self.watcher.start()

    def describe_batch(self, changes) -> ev.Changes:
        """The batch as the machine sees it, with the filesystem facts its settle policy needs."""
        root = self.settings.app_dir
        seen = self.now()
        offset = time.time() - seen  # mtimes are wall-clock; phases are on the monotonic clock
        paths, half_done, new_dir, newest, stats = set(), set(), False, None, {}
        for change, path in changes:
            rel = os.path.relpath(path, root) if is_under(path, root) else path
            paths.add((change.name, rel))
            try:
                st = os.stat(path)
            except OSError:
                half_done.add(rel)
                continue
            if stat.S_ISDIR(st.st_mode):
                new_dir = True
            elif st.st_size == 0:
                half_done.add(rel)  # truncated, not yet written (or saved empty: then the window runs out)
            stats[path] = (rel, st)
            newest = st.st_mtime if newest is None else max(newest, st.st_mtime)
        kinds = {dependencies.is_dependency_file(path) for _, path in changes}
        if True in kinds:
            self.check_dependencies()  # here, on the watcher's thread, not on the loop
        saved = min(seen, newest - offset) if newest is not None else None
        # A burst is not read through: it waits out its window, and a repeat of it costs one more window.
        # A file gone has no fingerprint: never taken for a repeat.
        prints = frozenset((rel, fingerprint(path, st)) for path, (rel, st) in stats.items()) \
            if len({path for _, path in changes}) < BURST_FILES else frozenset()
        return ev.Changes(frozenset(paths), True in kinds, False in kinds, frozenset(half_done), new_dir, saved, seen,
                          prints)

    # -- the loop ----------------------------------------------------------------------------------------

    def bind(self, timeout: float = 15.0):
        """Bind the port, waiting out a predecessor that still holds it (e.g. after a kill -9)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return uvicorn_seam.bind_socket(self.settings.host, self.settings.port)  # logs the error and exits on failure
            except SystemExit:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.25)

    def request_stop(self, signum, frame) -> None:
        self.events.put(ev.StopRequested(signum))

    def _on_watcher_state(self, event: ev.WatcherState) -> None:
        self.published = -1

    def _on_release_exited(self, event: ev.ReleaseExited) -> None:
        self.procs.release_exited(event.code, event.seconds, event.error)
        self.published = -1

    def _on_installed(self, event: ev.Installed) -> None:
        self.procs.installed(event.ok)
        self.feed(event)  # restarts the app (and asks the workers to follow) if it must
        self.procs.settle()  # a worker restart the install deferred goes now, if that did not ask for it

    def _on_stop_requested(self, event: ev.StopRequested) -> None:
        if self.watcher is not None:
            self.watcher.stop(timeout=0)  # a daemon thread: the stop never waits for it
        self.feed(event)

    # Every event on the queue, and its handler; the machine's own events go to the machine as they are.
    HANDLERS: dict[type, Callable] = {
        ev.Report: _on_report,
        ev.ReportsClosed: _on_reports_closed,
        ev.SpawnedExited: _on_spawned_exited,
        ev.WarmForked: _on_forked,
        ev.WarmChildExited: _on_warm_child_exited,
        ev.WarmExited: _on_warm_exited,
        ev.WarmReady: _on_warm_ready,
        ev.WarmLayer: _on_warm_layer,
        ev.WatcherState: _on_watcher_state,
        ev.ReleaseExited: _on_release_exited,
        ev.Installed: _on_installed,
        ev.StopRequested: _on_stop_requested,
        ev.Changes: feed,
        ev.Started: feed,
    }

    def dispatch(self, event) -> None:
        self.HANDLERS[type(event)](self, event)

    def timeout(self) -> float:
        deadlines = [c.deadline for c in [*self.forks.values(), *self.waiting] if c.deadline is not None]
        for due in (self.machine.next_deadline(), self.procs.next_deadline()):
            if due is not None:
                deadlines.append(due)
        if self.published != self.machine.version:
            deadlines.append(self.published_at + PUBLISH_EVERY_S)  # the state file, once it is due
        return 1.0 if not deadlines else min(1.0, max(0.0, min(deadlines) - self.now()))

    def on_timers(self) -> None:
        now = self.now()
        for key, child in list(self.forks.items()):
            if child.deadline is not None and now >= child.deadline:
                self._fall_back_to_spawn(key, child)
        if any(now >= child.deadline for child in self.waiting):
            log.warning("the warm process is not ready after %.0f s; starting a fresh interpreter", WARM_WAIT_S)
            self._stop_waiting()
        self.act(self.machine.on_timers())
        if self.procs.on_timers():  # a release that outran UNSTUCK_RELEASE_TIMEOUT was stopped
            self.published = -1

    def publish(self, force: bool = False) -> None:
        if self.published == self.machine.version:
            return
        now = self.now()
        if now - self.published_at < PUBLISH_EVERY_S and not force:
            return  # written once it is due (see timeout): a reload's phases make one write, not five
        self.published, self.published_at = self.machine.version, now
        snapshot = self.machine.snapshot()
        warm = self.warm.current if self.warm else None
        try:
            state.write(self.settings.state_file, app_module=self.settings.app_module, port=self.settings.port,
                        warm_modules=len(warm.modules) if warm else None, app_layer=self.app_layer,
                        procfile_error=self.procs.error, dependency_set=self.dependency_set, **self.procs.state(),
                        watcher=self.watcher.state() if self.watcher else None, **snapshot)
        except OSError as exc:
            log.debug("cannot write state file: %s", exc)

    def run(self) -> int:
        self.sock = self.bind()
        self.procs.load()
        self.warm = WarmProcesses(self.sock.fileno(), preload_file(self.settings), self.events,
                                  self.settings.warm)
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        self.start_watching()
        # The warm process first: the first generation is forked from it once it has imported what the
        # app used last time (see WARM_WAIT_S), and every reload after that is warm from the start.
        self.warm.start(self.warm.remembered() or seeds.installed())
        self.act(self.machine.start())
        self.publish()
        while not self.machine.finished:
            try:
                self.dispatch(self.events.get(timeout=self.timeout()))
            except queue.Empty:
                pass
            self.on_timers()
            if self.events.empty():  # the state file once the burst of events is handled, not after each
                self.publish()
        self.publish(force=True)
        self.procs.close()
        self.warm.close()
        log.info("stopped")
        return 0
