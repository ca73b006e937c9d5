"""The reload server's side of the warm process (warm_process.py is the process itself).

Nothing here blocks the reload server's loop: a fork request is sent, and the reply comes back later as
an event on the reload server's queue, like every other thing it waits for. A thread per warm process
only turns the messages on its control socket into those events.

Its messages (wire.py) become the events put on `events` in events.from_warm (WarmReady, WarmForked,
WarmChildExited, WarmLayer), and WarmExited when it is gone; those only logged are logged here.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import os
from pathlib import Path

from unstuck import wire
from unstuck.reload import events as ev
from unstuck.warm import app_layer, orm_ahead
from unstuck.logs import log

# What the warm process says that is only logged (on its reader thread: nothing waits for it).
NOTES = {
    wire.Preloaded: lambda warm, m: log.debug("warm process %d imported %d more modules, warmed up %s", warm.pid,
                                              m.modules, ", ".join(m.warmed or []) or "nothing"),
    wire.SeedsSkipped: lambda warm, m: log.debug("first start: %s not imported ahead, since the project's sources "
                                                 "do not import it", " and ".join(m.skipped or ())),
}


class WarmProcess:
    """One warm process, seen from the reload server."""

    def __init__(self, listen_fd: int, preload_file: Path, modules: frozenset[str], events,
                 also: frozenset[str] = frozenset(), narrow: bool = False, layer_off: bool = False,
                 orm_ahead_off: bool = False) -> None:
        """It imports what `preload_file` lists (`modules` is that, for the caller's books) and `also`;
        `narrow`: only uvicorn and unstuck's worker; `layer_off`: no app layer; `orm_ahead_off`: its layers do not
        configure SQLAlchemy's mappers (orm_ahead.py)."""
        self.modules = frozenset() if narrow else modules | also
        self.ready = False
        self.retiring = False
        self.children = 0  # forked and not yet exited
        self._events = events
        self._next_request = 0
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.control = ours
        args = [sys.executable, "-m", "unstuck", "warm-process", "--control-fd", str(theirs.fileno()),
                "--listen-fd", str(listen_fd), "--parent-pid", str(os.getpid()), "--preload", str(preload_file)]
        if also and not narrow:
            args += ["--import", ",".join(sorted(also))]
        args += ["--narrow"] if narrow else []
        args += ["--no-layer"] if layer_off else []
        args += ["--no-orm-ahead"] if orm_ahead_off else []
        # Started outside the app's tree, so that nothing of the user's code is importable there.
        self.proc = subprocess.Popen(args, pass_fds=(theirs.fileno(), listen_fd), cwd="/")
        theirs.close()
        threading.Thread(target=self._read, daemon=True, name="warm").start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read(self) -> None:
        while True:
            try:
                data, fds, _, _ = socket.recv_fds(self.control, 1 << 16, 1)
            except OSError:
                data, fds = b"", []
            if not data:
                break
            message = wire.decode_warm(data)
            pidfd = fds.pop(0) if isinstance(message, wire.Forked) and fds else None
            event = ev.from_warm(self, message, pidfd)
            if event is not None:
                self._events.put(event)
            else:
                NOTES[type(message)](self, message)
            for fd in fds:  # never expected: do not leak them
                os.close(fd)
        self.proc.wait()
        self._events.put(ev.WarmExited(self))

    def request_fork(self, report_fd: int, failure: dict | None, changes: list | None = None) -> int | None:
        """Ask for a worker that reports on `report_fd`; the request's id, or None if it cannot fork (the
        caller then starts a fresh interpreter). The answer comes as a WarmForked event. `changes`: the
        saves that caused it, [kind, absolute path] (the app layer is used only for those)."""
        if not self.ready or self.retiring:
            return None
        self._next_request += 1
        request = wire.encode(wire.Fork(self._next_request, failure, changes))
        try:
            socket.send_fds(self.control, [request], [report_fd])
        except OSError:
            return None
        return self._next_request

    def preload(self, modules: set[str]) -> None:
        """Have it import these as well (it does so between forks, ready or not yet). They must be in the
        preload file already: it is read again there, so no message size limits the list."""
        try:
            self.control.send(wire.encode(wire.Preload()))
        except OSError:
            return
        self.modules = self.modules | frozenset(modules)

    def prepare_layer(self) -> None:
        """A reload is done: build the app layer, of the modules now listed beside the preload file."""
        if not self.ready or self.retiring:
            return
        self.send(wire.BuildLayer())

    def send(self, request) -> None:
        try:
            self.control.send(wire.encode(request))
        except OSError:
            pass

    def forked(self) -> None:
        self.children += 1

    def child_exited(self) -> None:
        self.children = max(0, self.children - 1)
        if self.retiring and not self.children:
            self.close()

    def retire(self) -> None:
        """Stop forking; exit once the workers it forked have exited (they die with it)."""
        self.retiring = True
        if not self.children:
            self.close()

    def close(self) -> None:
        """It exits when its control socket closes."""
        try:
            self.control.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class WarmProcesses:
    """The warm process in use, and its replacement while that one is still preloading.

    When the app uses third-party modules the warm process has not imported, it imports them in place.
    After dependencies were installed (its modules may be other versions now) a replacement is started;
    the old one then retires, living on only as long as workers it forked do.
    """

    def __init__(self, listen_fd: int, preload_file: Path, events, enabled: bool) -> None:
        self.listen_fd = listen_fd
        self.preload_file = preload_file
        self.events = events
        self.enabled = enabled
        self.current: WarmProcess | None = None
        self.next: WarmProcess | None = None
        # What the app's generations reported using (the preload file), in the order they first imported
        # it (a dict as an ordered set): not the seeds a first start guessed.
        self.learned: dict[str, None] = dict.fromkeys(self.remembered())
        # Narrowed after a fast path showed a failure that a fresh interpreter did not (distrust), for the
        # life of this reload server: a restart tries the full fast path again (and checks it again).
        self.narrow = False
        self.layer_off = False
        self.orm_ahead_off = False

    def running(self) -> list[WarmProcess]:
        """The warm process serving forks and the one warming up to replace it, those there are."""
        return [warm for warm in (self.current, self.next) if warm is not None]

    @property
    def modules(self) -> frozenset[str]:
        newest = self.next or self.current
        return newest.modules if newest else frozenset()

    def remembered(self) -> list[str]:
        """The modules preloaded in this container before (kept across restarts of the server), in order."""
        try:
            return self.preload_file.read_text().split()
        except OSError:
            return []

    def start(self, modules: set[str]) -> None:
        if not self.enabled:
            return
        if self.next is not None:
            self.next.retire()
        # What the preload file does not list (a first start's seeds) is passed along.
        self.next = WarmProcess(self.listen_fd, self.preload_file, frozenset(self.learned), self.events,
                                frozenset(set(modules) - set(self.learned)), self.narrow, self.layer_off,
                                self.orm_ahead_off)

    def learn(self, modules) -> None:
        """`modules`: what a generation imported from outside the app's tree, in the order it imported them."""
        if not self.enabled:
            return
        unknown = [name for name in modules if name not in self.learned]
        if unknown:  # the preload file lists what was used, never unused seeds; new ones go at its end
            self.learned.update(dict.fromkeys(unknown))
            self.remember(list(self.learned))
        if self.narrow:
            return
        modules = set(modules)
        new = modules - self.modules
        target = self.next or self.current
        if not new:
            return
        if target is None:
            self.start(new)
            return
        target.preload(new)

    def learn_app(self, app_modules) -> None:
        """The user's modules the current generation imported (name, file): the warm process's app layer
        imports those a save is unlikely to change (app_layer.py)."""
        if not self.enabled or not app_modules:
            return
        text = "".join(app_layer.list_line(entry) for entry in app_modules)
        path = Path(app_layer.list_file(self.preload_file))
        try:
            # The same modules (in another order, or recorded otherwise: a generation forked from the layer
            # imported them in the layer's order) change nothing: the layer would only be built again for
            # nothing, and the order a fresh import started them in is the one to keep.
            if path.exists() and ({entry[:2] for entry in app_layer.read_list(str(path))}
                                  == {tuple(entry[:2]) for entry in app_modules}):
                return
            path.write_text(text)
        except OSError as exc:
            log.debug("cannot write %s: %s", path, exc)

    def prepare_layer(self) -> None:
        if self.enabled and self.current is not None:
            self.current.prepare_layer()

    def remember(self, modules: list[str]) -> None:
        try:
            self.preload_file.write_text("\n".join(modules) + "\n")
        except OSError as exc:
            log.debug("cannot write %s: %s", self.preload_file, exc)

    def distrust(self, source: str) -> str:
        """A generation made by `source` failed where a fresh interpreter served the same code: narrow the fast
        path that was wrong, one step each time (the app layer off; then no preloaded modules; then no warm
        process), until the reload server restarts. Says what was done, for the log and the status."""
        if not self.enabled:
            return "Reloads start fresh interpreters already."
        if source == orm_ahead.SOURCE and not self.orm_ahead_off and not self.layer_off:
            # A step narrower than the layer off: the layer is right but for the mappers configured in it.
            self.orm_ahead_off = True
            for warm in self.running():
                warm.send(wire.NoOrmAhead())
            return ("The app layer no longer configures SQLAlchemy's mappers ahead, until the container restarts: "
                    "each reload configures them (at the app's first query, as a fresh interpreter does).")
        if source in ("app layer", orm_ahead.SOURCE) and not self.layer_off:
            self.layer_off = True
            for warm in self.running():
                warm.send(wire.NoLayer())
            return ("The app layer is off until the container restarts: each save imports all of the app's "
                    "code (in a fork that has its third-party modules).")
        if not self.narrow:
            self.narrow = True
            self.rebuild()
            return ("The warm process no longer imports the modules the app used ahead of it, until the container "
                    "restarts: each reload imports them itself.")
        self.enabled = False
        for warm in self.running():
            warm.retire()
        self.current = self.next = None
        return "The warm process is off until the container restarts: each reload starts a fresh interpreter."

    def rebuild(self) -> None:
        """Fresh imports of the same modules (after an install they may be other versions)."""
        modules = set(self.modules)
        if self.current is not None:
            self.current.retire()
            self.current = None
        self.start(modules)

    def on_ready(self, warm: WarmProcess, message: wire.WarmStarted) -> None:
        if warm is not self.next:
            warm.retire()
            return
        warm.ready = True
        old, self.current, self.next = self.current, warm, None
        if old is not None:
            old.retire()
        log.debug("warm process %d ready: %d modules preloaded in %.2f s", warm.pid, message.modules,
                  message.seconds)
        if message.stopped_at:
            log.debug("warm process %d imported the app's modules up to %s, which fails outside the app (its "
                      "framework is not set up there): each reload imports it and the rest itself", warm.pid,
                      message.stopped_at)

    def on_exit(self, warm: WarmProcess, stopping: bool) -> None:
        if warm is self.current:
            self.current = None
            if not warm.retiring and not stopping:
                log.warning("the warm process (pid %d) exited; reloads start fresh interpreters until it is "
                            "rebuilt", warm.pid)
        if warm is self.next:
            self.next = None

    def close(self) -> None:
        """At exit: each exits when its control socket closes; waited for briefly, so that it is not
        killed by its parent-death signal (and reaped as an unknown pid by supervisord) instead."""
        for warm in self.running():
            warm.close()
        for warm in self.running():
            try:
                warm.proc.wait(timeout=1.0)
            except subprocess.TimeoutExpired:
                pass
