"""Idle keep-alive connections move from a retiring generation to the one that replaces it.

A browser (or any HTTP client) keeps its connection open between requests. Without this, the retiring
generation answers the next request on that connection itself, with the old code (and `Connection:
close`, so that the one after reaches the new code): a save is not served on the first refresh. Closing
the idle connection instead would race with a request the client is sending at that moment, which most
clients do not retry. Handing the socket itself over has neither problem: the TCP connection stays open,
bytes already sent wait in the kernel, and the new generation reads them.

Each generation listens on `<run dir>/handoff/<pid>.sock`; the reload server points `<run dir>/handoff/
current` at the current generation's socket before it retires the previous one, which on its way out
sends the file descriptor of each idle connection there (SCM_RIGHTS), then forgets it without closing
the connection. Whatever cannot be handed over is drained as before (see draining.py).

A generation does not wait for that: the moment it accepts connections, it asks the one that serves (the
`current` link's target) for its idle connections (`pull`). Waiting for the retirement costs a chain of
wake-ups (the report to the reload server, its loop, a signal, the old generation's loop: 3-5 ms of every
reload on a 2-core machine) during which the client's next request still reaches the old code. Pulling
early is safe because the reload server promotes every generation that becomes ready unless it already
retired it (superseded by a newer save, or stopping): such a generation gives what it pulled back to
whoever `current` names when its SIGTERM comes, or drains it when nobody serves.

A connection changes owners only once the receiver has said so. The giver sends the descriptor, says that
is all, and goes on serving its other connections until the receiver answers how many it took; until
then both hold the connection and neither reads it. Without that answer, a descriptor sent to a
generation closing its listener at that moment (superseded too: several times in a soak of 300 edits)
was closed with the listener's queue, under a client that had done nothing wrong. With no answer in
time, the giver shuts its side for reading before it looks one last time: an answer sent after that
fails (EPIPE) and the receiver closes its copy, so one owner never becomes two.
"""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path
from typing import Callable

CURRENT = "current"
PULL = b"pull"  # a message without descriptors: "hand your idle connections to <pid>'s socket now"
# How long a giver waits to hear whether its connection was taken, and a receiver for the rest of a
# hand-over (sent at once). Both are loops serving requests: measured under load, an answer took at most
# 0.45 s (two soaks at once on 2 cores); the bound is for a loop that is stuck.
WAIT_S = 1.0


def directory(run_dir: Path) -> Path:
    return run_dir / "handoff"


def socket_path(run_dir: Path, pid: int) -> Path:
    return directory(run_dir) / f"{pid}.sock"


def point_current_at(run_dir: Path, pid: int | None) -> None:
    """The reload server: whoever retires from now on hands its idle connections to `pid` (to nobody when
    None: stopping)."""
    link = directory(run_dir) / CURRENT
    try:
        directory(run_dir).mkdir(mode=0o700, exist_ok=True)
        if pid is None:
            link.unlink(missing_ok=True)
            return
        tmp = link.with_name(f".{CURRENT}.{os.getpid()}")
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(socket_path(run_dir, pid).name)
        os.replace(tmp, link)  # atomic: a retiring generation reads the old target or the new one
    except OSError:
        pass  # without it, retiring generations drain their connections instead


class Receiver:
    """In a generation: adopt the connections its predecessor hands over, as if it had accepted them."""

    def __init__(self, run_dir: Path, protocol_factory: Callable[[], asyncio.Protocol],
                 on_pull: Callable[[Path], None] | None = None) -> None:
        self.path = socket_path(run_dir, os.getpid())
        self.protocol_factory = protocol_factory
        self.on_pull = on_pull  # a successor asks for the idle connections: give them to this socket
        self.listener: socket.socket | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> bool:
        try:
            self.path.parent.mkdir(mode=0o700, exist_ok=True)
            self.path.unlink(missing_ok=True)
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            listener.bind(str(self.path))
            listener.listen(8)
        except OSError:
            return False
        listener.setblocking(False)
        self.listener, self.loop = listener, loop
        loop.add_reader(listener.fileno(), self._accept)
        return True

    def _accept(self) -> bool:
        """Take one hand-over from the listener's queue; False when there was none to take."""
        try:
            conn, _ = self.listener.accept()
        except (BlockingIOError, OSError):
            return False
        conn.settimeout(WAIT_S)  # the giver sends everything at once, then says that is all
        puller, received = None, []
        with conn:
            while True:
                try:
                    data, fds, _, _ = socket.recv_fds(conn, 64, 64)
                except OSError:
                    break
                if not fds:  # the giver said that is all (or a pull, which is all it says)
                    if data.startswith(PULL + b" ") and data[len(PULL) + 1:].isdigit():
                        puller = socket_path(self.path.parent.parent, int(data[len(PULL) + 1:]))
                    break
                for fd in fds:
                    # Close-on-exec, as an accepted socket is: a subprocess of the app must not keep the
                    # connection open. (recv_fds drops its flags argument, MSG_CMSG_CLOEXEC, on 3.11.)
                    os.set_inheritable(fd, False)
                    received.append(socket.socket(fileno=fd))
            taken = False
            if received:
                try:
                    conn.send(b"%d" % len(received))
                    taken = True
                except OSError:
                    pass  # the giver stopped waiting (or is gone): the connections are still its own
        for sock in received:
            if not taken:
                sock.close()  # our copy only
                continue
            sock.setblocking(False)
            self.loop.create_task(self.loop.connect_accepted_socket(self.protocol_factory, sock))
        if puller is not None and self.on_pull is not None:
            self.on_pull(puller)
        return True

    def stop(self) -> None:
        """Shutting down: take nothing more. A hand-over still queued is refused with the listener (its giver
        hears no answer and keeps the connection: see the module's docstring)."""
        if self.listener is None:
            return
        self.path.unlink(missing_ok=True)  # first: a giver looking for it from now on finds nothing
        self.loop.remove_reader(self.listener.fileno())
        self.listener.close()
        self.listener = None


def successor(run_dir: Path) -> Path | None:
    """In a retiring generation: the socket of the generation that serves now, if it is not this one."""
    try:
        target = directory(run_dir) / os.readlink(directory(run_dir) / CURRENT)
    except OSError:
        return None
    return None if target == socket_path(run_dir, os.getpid()) else target


def pull(run_dir: Path) -> bool:
    """In a generation that has just started accepting connections: ask the one that serves now for its idle
    connections (they arrive at this generation's Receiver). False when there is nobody to ask."""
    target = successor(run_dir)  # the `current` link's target, unless it is this generation
    if target is None:
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as out:
            out.setblocking(False)  # its listener has a backlog: a connect that would wait is not worth it
            out.connect(str(target))
            out.send(PULL + b" %d" % os.getpid())
    except OSError:
        return False  # gone (retiring, or a stale link after a restart): its SIGTERM path still hands over
    return True


def give(loop: asyncio.AbstractEventLoop, target: Path, transport: asyncio.Transport,
         done: Callable[[bool], None]) -> bool:
    """Send this idle connection to the generation listening on `target`, without waiting for its answer
    (this loop serves other connections meanwhile): `done(True)` once it said it took the connection (the
    caller then forgets it, closing only its own descriptor), `done(False)` once it did not (refused, gone,
    or silent for WAIT_S: the connection reads on here). False when nothing could be sent (no `done`)."""
    sock = transport.get_extra_info("socket")
    if sock is None:
        return False
    out = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        out.setblocking(False)  # a listener whose backlog is full refuses at once
        out.connect(str(target))
        transport.pause_reading()  # from now on, what the client sends is the successor's to read
        try:
            socket.send_fds(out, [b"c"], [sock.fileno()])
            out.shutdown(socket.SHUT_WR)  # "that is all"
        except OSError:
            transport.resume_reading()
            raise
    except OSError:
        out.close()
        return False

    def settle() -> None:
        if out.fileno() < 0:
            return  # settled already (its answer and the timer came in one turn of the loop)
        loop.remove_reader(out.fileno())
        timer.cancel()
        taken = _taken(out)
        out.close()
        if not taken:
            transport.resume_reading()
        done(taken)

    timer = loop.call_later(WAIT_S, settle)
    loop.add_reader(out.fileno(), settle)
    return True


def _taken(out: socket.socket) -> bool:
    """Whether the receiver said it took what was sent on `out`."""
    try:
        answer = out.recv(16)
    except OSError:  # nothing yet (the wait is over), or refused (a listener closed with its queue resets it)
        answer = b""
    if not answer:
        try:
            out.shutdown(socket.SHUT_RD)  # an answer sent after this fails: the receiver keeps nothing
            answer = out.recv(16)  # one sent just before is still here
        except OSError:
            answer = b""
    return answer.isdigit() and int(answer) > 0
