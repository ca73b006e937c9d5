"""The reload server's hand on the Procfile workers: restart them with each change batch, apply Procfile edits.

The workers are supervisord programs (one group, see supervisord_conf.render_procs); this talks to
supervisord over its XML-RPC control socket with supervisor's own client (`childutils.getRPCInterface`),
on a thread of its own so that a slow call never holds the reload server's loop. A Procfile edit is what
`supervisorctl update` does: re-render the included file, `reloadConfig`, then remove and re-add the group.
"""

from __future__ import annotations

import hashlib
import os
import queue
import threading
import xmlrpc.client
from pathlib import Path

from supervisor import childutils

from unstuck import procfile, supervisord_conf
from unstuck.config import Settings
from unstuck.logs import log


def write_procs_conf(settings: Settings) -> tuple[list[procfile.Proc], str | None]:
    """Render the workers' programs from the Procfile; (workers, one-line error or None)."""
    try:
        procs = procfile.workers(settings.procfile)
        error = None
    except procfile.ProcfileError as exc:
        procs, error = None, str(exc)
    if procs is not None:
        target = settings.run_dir / "procs.conf"
        tmp = target.with_suffix(".tmp")
        tmp.write_text(supervisord_conf.render_procs(settings, procs))
        os.replace(tmp, target)
    return procs or [], error


def digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


class ProcControl:
    def __init__(self, settings: Settings, rpc=None) -> None:
        self.settings = settings
        self.names: list[str] = []
        self.error: str | None = None
        self._digest = digest(settings.procfile)
        self._rpc = rpc
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        threading.Thread(target=self._work, daemon=True, name="procs").start()

    def load(self) -> None:
        """What the Procfile declared at container start (supervisord was started with it)."""
        try:
            self.names = [p.name for p in procfile.workers(self.settings.procfile)]
        except procfile.ProcfileError as exc:
            self.error = str(exc)

    def rpc(self):
        if self._rpc is None:
            self._rpc = childutils.getRPCInterface(os.environ)
        return self._rpc

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                job()
            except (xmlrpc.client.Fault, OSError) as exc:  # e.g. SHUTDOWN_STATE while the container stops
                log.warning("could not control the Procfile workers: %s", exc)

    def on_batch(self, reason: str) -> None:
        """A change batch or an install: the workers restart on the same saved code as the web app; a
        changed Procfile is applied instead (that restarts every worker anyway)."""
        current = digest(self.settings.procfile)
        if current != self._digest:
            self._digest = current
            procs, error = write_procs_conf(self.settings)
            if error is not None:
                self.error = error
                log.error("%s; the workers keep running as they were", error)
                return
            self.error = None
            self.names = [p.name for p in procs]
            log.info("Procfile changed: workers are now %s", ", ".join(self.names) or "none")
            self._jobs.put(self._update)
            return
        if self.names:
            log.info("restarting %s with the web app (%s)", ", ".join(self.names), reason)
            self._jobs.put(self._restart)

    def _restart(self) -> None:
        self.rpc().supervisor.signalProcessGroup(supervisord_conf.PROCS_GROUP, "HUP")

    def _update(self) -> None:
        supervisor = self.rpc().supervisor
        added, changed, removed = supervisor.reloadConfig()[0]
        for group in removed + changed:
            supervisor.stopProcessGroup(group)
            supervisor.removeProcessGroup(group)
        for group in changed + added:
            supervisor.addProcessGroup(group)
