"""A worker's output never stops its event loop: what it prints goes through a thread of its own.

A generation writes its access lines, uvicorn's and unstuck's log lines and whatever the app prints to a
pipe that supervisord reads and copies to the container's stdout, which the Docker engine reads in turn.
When any of them falls behind (the engine busy removing images, a slow log driver, supervisord blocked on
its own write), the pipe fills (64 KiB), and the next `write` blocks: with the logging calls made on the
event loop, every request the generation holds then waits, for as long as the log is not read (seen as a
request unanswered for 10 s in a soak run after a whole test suite).

So here sys.stdout and sys.stderr (and the logging handlers that captured them) put what is written on
one queue, in order, and one thread writes it out, blocking where the loop must not. Nothing is lost while
the backlog stays under LIMIT bytes; past that, new output is dropped and counted, and a line says how much
once the log is read again: a dev server that stalls every request because its log is slow is worse than
one that drops log lines while nobody reads them. `drain()` (at exit) waits a bounded time for the rest.
"""

from __future__ import annotations

import atexit
import collections
import io
import logging
import os
import sys
import threading
import time

LIMIT = 4 << 20  # bytes waiting to be written before new output is dropped
DRAIN_S = 2.0  # how long an exiting process waits for its output to be written


class Pump:
    """One writer thread for the process's stdout and stderr descriptors, in the order things were written."""

    def __init__(self, limit: int = LIMIT) -> None:
        self.limit = limit
        self.queue: collections.deque[tuple[int, bytes]] = collections.deque()
        self.queued = 0  # bytes in the queue
        self.dropped = 0  # bytes dropped since the last time the queue was empty
        self.busy = False  # the thread is writing an item it took off the queue
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._run, name="unstuck-output", daemon=True)
        self.thread.start()

    def put(self, fd: int, data: bytes) -> None:
        with self.cond:
            if self.queued + len(data) > self.limit:
                self.dropped += len(data)
                return
            self.queue.append((fd, data))
            self.queued += len(data)
            self.cond.notify()

    def _run(self) -> None:
        while True:
            with self.cond:
                while not self.queue:
                    if self.dropped:  # caught up: say what was lost, once
                        note = (f"unstuck: {self.dropped} bytes of output were dropped: the container's log was "
                                f"not read fast enough\n").encode()
                        self.queue.append((2, note))
                        self.queued += len(note)
                        self.dropped = 0
                        break
                    self.busy = False
                    self.cond.notify_all()
                    self.cond.wait()
                fd, data = self.queue.popleft()
                self.queued -= len(data)
                self.busy = True
            _write_all(fd, data)

    def drain(self, timeout: float = DRAIN_S) -> bool:
        """Wait until everything queued is written (at most `timeout`); whether it was."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while self.queue or self.busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(left)
        return True


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view):]
        except InterruptedError:
            continue
        except OSError:
            return  # the reader is gone: nothing more can be said


class PumpedText(io.TextIOBase):
    """A text stream whose writes go to the pump. `flush` returns at once: the data is queued, in order."""

    def __init__(self, pump: Pump, fd: int, like) -> None:
        self._pump, self._fd = pump, fd
        self._encoding = getattr(like, "encoding", None) or "utf-8"

    @property
    def encoding(self) -> str:
        return self._encoding

    @property
    def errors(self) -> str:
        return "backslashreplace"

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if text:
            self._pump.put(self._fd, text.encode(self._encoding, "backslashreplace"))
        return len(text)

    def fileno(self) -> int:
        return self._fd  # for what writes to the descriptor itself (faulthandler, a subprocess's stdout)

    def isatty(self) -> bool:
        return False


_pump: Pump | None = None


def pump_stdio() -> None:
    """In a worker (once, after any fork): stdout, stderr and every logging handler that writes to them go
    through the pump from now on."""
    global _pump
    if _pump is not None:
        return
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):
            pass
    _pump = Pump()
    old = {id(sys.stdout): PumpedText(_pump, 1, sys.stdout), id(sys.stderr): PumpedText(_pump, 2, sys.stderr)}
    loggers = [logging.getLogger()] + [logger for logger in logging.root.manager.loggerDict.values()
                                       if isinstance(logger, logging.Logger)]
    for logger in loggers:
        for handler in logger.handlers:
            if isinstance(handler, logging.StreamHandler) and id(handler.stream) in old:
                handler.setStream(old[id(handler.stream)])
    sys.stdout, sys.stderr = old[id(sys.stdout)], old[id(sys.stderr)]
    atexit.register(drain)


def drain(timeout: float = DRAIN_S) -> None:
    """Before the process ends: what it printed last (an error, a traceback) is written, within `timeout`."""
    if _pump is not None:
        _pump.drain(timeout)
