"""The reload server's hand on the Procfile workers: run the release, start the workers once the dependencies
are in, restart them with each change batch, apply Procfile edits (proc_plan.py decides when).

The workers are supervisord programs (one group, see supervisord_conf.render_procs); this talks to
supervisord over its XML-RPC control socket with supervisor's own client (`childutils.getRPCInterface`),
on a thread of its own so that a slow call never holds the reload server's loop. A Procfile edit is what
`supervisorctl update` does: re-render the included file, `reloadConfig`, then remove and re-add the group.
"""

from __future__ import annotations

import functools
import hashlib
import os
import queue
import threading
import time
import xmlrpc.client
from pathlib import Path

from unstuck.procs import procfile
from unstuck.seams import supervisor_seam
from unstuck.supervision import supervisord_conf
from unstuck.config import Settings
from unstuck.logs import log
from unstuck.procs.proc_plan import ProcPlan
from unstuck.procs.proc_release import Release


def write_procs_conf(settings: Settings) -> tuple[list[procfile.Proc], str | None]:
    """Render the workers' programs from the Procfile; (its entries, one-line error or None)."""
    try:
        procs = procfile.read(settings.procfile)
        error = None
    except procfile.ProcfileError as exc:
        procs, error = None, str(exc)
    if procs is not None:
        target = settings.run_dir / "procs.conf"
        tmp = target.with_suffix(".tmp")
        tmp.write_text(supervisord_conf.render_procs(settings, procfile.workers_of(procs)))
        os.replace(tmp, target)
    return procs or [], error


def digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def release_command(procs: list[procfile.Proc]) -> str | None:
    release = procfile.release_of(procs)
    return release.command if release else None


def contained(what: str, default=None):
    """An entry point the reload server calls on its loop: an unexpected error in it (a file that cannot be
    written, a bug) is logged once, in one line, and costs the Procfile workers this one step; the reload
    server and the app go on, and the next change batch tries again."""
    def wrap(method):
        @functools.wraps(method)
        def run(self, *args, **kwargs):
            try:
                return method(self, *args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - see above
                self.said_once(what, exc)
                return default

        return run

    return wrap


class ProcControl:
    """The shell of proc_plan.ProcPlan: its calls into supervisord go to a thread of their own, the release
    runs on one, and `on_release_exit(code, seconds, error)` is called there when it has exited (the reload
    server hands that back to release_exited() on its own thread)."""

    def __init__(self, settings: Settings, on_release_exit=None, rpc=None) -> None:
        self.settings = settings
        self.error: str | None = None
        self.plan = ProcPlan(self, timeout=settings.release_timeout, grace=settings.worker_grace)
        self.release = Release(settings, on_release_exit or (lambda *exit: None))
        self._digest = digest(settings.procfile)
        self._rpc = rpc
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._said: set[str] = set()
        threading.Thread(target=self._work, daemon=True, name="procs").start()

    def said_once(self, what: str, exc: Exception) -> None:
        line = f"could not {what} ({type(exc).__name__}: {exc})"
        if line in self._said:
            log.debug("%s, again", line)
            return
        self._said.add(line)
        log.error("Procfile workers: %s; the app is not affected, the next change tries again", line)

    @contained("read the Procfile")
    def load(self) -> None:
        """What the Procfile declared at container start (supervisord was started with it)."""
        try:
            procs = procfile.read(self.settings.procfile)
        except procfile.ProcfileError as exc:
            self.error = str(exc)
            return
        self.plan.release = release_command(procs)
        self.plan.workers = tuple(p.name for p in procfile.workers_of(procs))

    def rpc(self):
        if self._rpc is None:
            self._rpc = supervisor_seam.rpc_interface()
        return self._rpc

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                job()
            except (xmlrpc.client.Fault, OSError) as exc:  # e.g. SHUTDOWN_STATE while the container stops
                log.warning("could not control the Procfile workers: %s", exc)
            except Exception as exc:  # noqa: BLE001 - this thread must outlive any one call, or every later
                # restart of the workers would be queued forever without a word
                log.error("could not control the Procfile workers (%s: %s); the next change tries again",
                          type(exc).__name__, exc)

    # -- what the reload server tells ---------------------------------------------------------------

    @contained("follow the change")
    def on_batch(self, reason: str) -> None:
        """The web app (re)starts (a change batch, an install, the first start): the workers restart on the
        same saved code, after the release when one is due; a changed Procfile is applied first."""
        current = digest(self.settings.procfile)
        if current != self._digest:
            procs, error = write_procs_conf(self.settings)
            self._digest = current  # only once written: a write that failed is tried again with the next batch
            if error is not None:
                self.error = error
                log.error("%s; the workers keep running as they were", error)
                return
            self.error = None
            workers = tuple(p.name for p in procfile.workers_of(procs))
            log.info("Procfile changed: workers are now %s", ", ".join(workers) or "none")
            self.plan.procfile_changed(release_command(procs), workers)
        self.plan.request(reason)

    @contained("hold the workers during the install")
    def install_started(self) -> None:
        self.plan.install_started()

    @contained("follow the install")
    def installed(self, ok: bool) -> None:
        self.plan.installed(ok)

    @contained("start what the install deferred")
    def settle(self) -> None:
        self.plan.settle()

    @contained("follow the release's exit")
    def release_exited(self, code: int, seconds: float, error: str | None) -> None:
        self.plan.release_exited(code, seconds, error)

    @contained("time the release")
    def next_deadline(self) -> float | None:
        return self.plan.next_deadline()

    @contained("stop a release that hung", default=False)
    def on_timers(self) -> bool:
        """A release that outran UNSTUCK_RELEASE_TIMEOUT is stopped; True when the status changed."""
        return self.plan.on_timers()

    @contained("stop the release")
    def close(self) -> None:
        self.release.stop()

    @contained("describe the workers", default={"release": None, "procs_waiting": None})
    def state(self) -> dict:
        return {"release": self.plan.snapshot(), "procs_waiting": self.plan.waiting()}

    # -- proc_plan.Ops -------------------------------------------------------------------------------

    def now(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    def run_release(self, command: str) -> None:
        self.release.start(command)

    def signal_release(self, signum: int) -> None:
        self.release.signal(signum)

    def apply_procfile(self) -> None:
        self._jobs.put(self._update)

    def start_workers(self) -> None:
        # Started, and restarted where they run already: a reload server that supervisord restarted finds
        # them running the code of its predecessor's time.
        self._jobs.put(self._restart)

    def restart_workers(self) -> None:
        self._jobs.put(self._restart)

    def _restart(self) -> None:
        # SIGHUP makes a running wrapper restart its worker; the programs a Procfile edit re-read are
        # stopped (autostart=false) and are started instead.
        supervisor = self.rpc().supervisor
        supervisor.signalProcessGroup(supervisord_conf.PROCS_GROUP, "HUP")
        supervisor.startProcessGroup(supervisord_conf.PROCS_GROUP, False)

    def _update(self) -> None:
        """What `supervisorctl update` does; the re-added group is stopped (autostart=false) until started."""
        supervisor = self.rpc().supervisor
        added, changed, removed = supervisor.reloadConfig()[0]
        for group in removed + changed:
            supervisor.stopProcessGroup(group)
            supervisor.removeProcessGroup(group)
        for group in changed + added:
            supervisor.addProcessGroup(group)
