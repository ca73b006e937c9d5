"""The reloader's side of the warm process (see forkserver.py): start it, ask it to fork, track children.

Forked workers are the warm process's children, not the reloader's, so ForkedProcess offers the part of
subprocess.Popen's interface the reloader uses (pid, poll, wait, send_signal, kill) backed by the exit
statuses the warm process reports.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

from unstuck.logs import log

FORK_REPLY_TIMEOUT_S = 2.0


class ForkedProcess:
    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._exited = threading.Event()

    def _set_exit(self, code: int) -> None:
        self.returncode = code
        self._exited.set()

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int | None:
        self._exited.wait(timeout)
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class ForkServerHandle:
    """One warm process. `events` receives ("warm_ready", self, message) and ("warm_exit", self, None)."""

    def __init__(self, listen_fd: int, preload_file: Path, modules: frozenset[str], events) -> None:
        self.modules = modules
        self.ready = False
        self.retiring = False
        self.children: dict[int, ForkedProcess] = {}
        self._replies: queue.SimpleQueue = queue.SimpleQueue()
        self._next_id = 0
        self._events = events
        self._lock = threading.Lock()
        self._abandoned: set[int] = set()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.control = ours
        args = [sys.executable, "-m", "unstuck", "forkserver", "--control-fd", str(theirs.fileno()),
                "--listen-fd", str(listen_fd), "--parent-pid", str(os.getpid()), "--preload", str(preload_file)]
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
                data = self.control.recv(1 << 16)
            except OSError:
                data = b""
            if not data:
                break
            message = json.loads(data)
            event = message.get("event")
            if event == "ready":
                self._events.put(("warm_ready", self, message))
            elif event == "preloaded":
                log.debug("warm process %d imported %d more modules", self.pid, message.get("modules", 0))
            elif event == "forked":
                with self._lock:
                    self.children[message["pid"]] = child = ForkedProcess(message["pid"])
                    abandoned = message["id"] in self._abandoned
                    if not abandoned:
                        self._replies.put(child)
                if abandoned:  # the reloader gave up waiting and started another worker instead
                    child.kill()
            elif event == "exit":
                with self._lock:
                    child = self.children.pop(message["pid"], None)
                if child is not None:
                    child._set_exit(message["code"])
                if self.retiring and not self.children:
                    self.close()
        # Gone: its children were killed with it (their parent-death signal).
        self.proc.wait()
        with self._lock:
            orphans, self.children = list(self.children.values()), {}
        for child in orphans:
            child._set_exit(-signal.SIGKILL)
        self._events.put(("warm_exit", self, None))

    def fork(self, report_fd: int, failure: dict | None) -> ForkedProcess | None:
        """Fork a worker that reports on `report_fd`; None if the warm process cannot (caller spawns)."""
        if not self.ready or self.retiring:
            return None
        self._next_id += 1
        request = json.dumps({"op": "fork", "id": self._next_id, "failure": failure}).encode()
        try:
            socket.send_fds(self.control, [request], [report_fd])
        except OSError:
            return None
        # Requests are one at a time and abandoned ones never queue a reply: what comes is this one's.
        try:
            return self._replies.get(timeout=FORK_REPLY_TIMEOUT_S)
        except queue.Empty:
            pass
        with self._lock:  # the reply may have come just now; otherwise its child is killed on arrival
            try:
                return self._replies.get_nowait()
            except queue.Empty:
                self._abandoned.add(self._next_id)
                return None

    def preload(self, modules: set[str]) -> None:
        """Have it import these as well (it does so between forks, ready or not yet). They must be in the
        preload file already: it is read again there, so no message size limits the list."""
        try:
            self.control.send(json.dumps({"op": "preload"}).encode())
        except OSError:
            return
        self.modules = self.modules | frozenset(modules)

    def retire(self) -> None:
        """Stop forking; exit once the workers it forked have exited (they die with it)."""
        self.retiring = True
        with self._lock:
            idle = not self.children
        if idle:
            self.close()

    def close(self) -> None:
        try:
            self.control.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class WarmProcesses:
    """The warm process in use, and its replacement while that one is still preloading.

    When the app uses third-party modules it has not imported, the warm process imports them in place.
    After dependencies were installed (its modules may be other versions now) a replacement is started;
    the old one then retires, living on only as long as workers it forked do.
    """

    def __init__(self, listen_fd: int, preload_file: Path, events, enabled: bool) -> None:
        self.listen_fd = listen_fd
        self.preload_file = preload_file
        self.events = events
        self.enabled = enabled
        self.current: ForkServerHandle | None = None
        self.next: ForkServerHandle | None = None

    @property
    def modules(self) -> frozenset[str]:
        newest = self.next or self.current
        return newest.modules if newest else frozenset()

    def remembered(self) -> set[str]:
        """The modules preloaded in this container before (kept across restarts of the server)."""
        try:
            return set(self.preload_file.read_text().split())
        except OSError:
            return set()

    def start(self, modules: set[str]) -> None:
        if not self.enabled:
            return
        if self.next is not None:
            self.next.retire()
        self.remember(frozenset(modules))
        self.next = ForkServerHandle(self.listen_fd, self.preload_file, frozenset(modules), self.events)

    def learn(self, modules: list[str]) -> None:
        new = set(modules) - self.modules
        target = self.next or self.current
        if not new or not self.enabled:
            return
        if target is None:
            self.start(new)
            return
        self.remember(target.modules | new)
        target.preload(new)

    def remember(self, modules: frozenset[str]) -> None:
        try:
            self.preload_file.write_text("\n".join(sorted(modules)) + "\n")
        except OSError as exc:
            log.debug("cannot write %s: %s", self.preload_file, exc)

    def rebuild(self) -> None:
        """Fresh imports of the same modules (after an install they may be other versions)."""
        modules = set(self.modules)
        if self.current is not None:
            self.current.retire()
            self.current = None
        self.start(modules)

    def on_ready(self, handle: ForkServerHandle, report: dict) -> None:
        if handle is not self.next:
            handle.retire()
            return
        handle.ready = True
        old, self.current, self.next = self.current, handle, None
        if old is not None:
            old.retire()
        log.debug("warm process %d ready: %d modules preloaded in %.2f s", handle.pid,
                       report.get("modules", 0), report.get("seconds", 0.0))

    def on_exit(self, handle: ForkServerHandle, stopping: bool) -> None:
        if handle is self.current:
            self.current = None
            if not handle.retiring and not stopping:
                log.warning("the warm process (pid %d) exited; reloads start fresh interpreters until it "
                                 "is rebuilt", handle.pid)
        if handle is self.next:
            self.next = None

    def fork(self, report_fd: int, failure: dict | None) -> ForkedProcess | None:
        return self.current.fork(report_fd, failure) if self.current is not None else None
