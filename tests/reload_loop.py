"""The reload server's loop, driven by a host test (tests/host): no supervisord, no Docker."""

from __future__ import annotations

import queue
import socket
import time

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def drive(reloader, done, what, timeout=30.0, keep=None, each=None):
    """Run the reload server's loop until done(); events the test wants to see go to `keep`, and `each()` runs
    after every turn (to watch what is served)."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout:g} s (state {reloader.machine.snapshot()})", pytrace=False)
        try:
            event = reloader.events.get(timeout=min(0.05 if each else 0.1, reloader.timeout()))
            if keep is not None:
                keep.put(event)
            reloader.dispatch(event)
        except queue.Empty:
            pass
        reloader.on_timers()
        if each is not None:
            each()


def served_alone(reloader, reloads: int | None = None) -> bool:
    """It serves (after `reloads` reloads, if given), and the generation it replaced has exited: between the
    new one's "ready" and the old one's SIGTERM (a few ms, handoff.py), the old one may still accept a
    connection and answer it, as it would have a moment earlier."""
    machine = reloader.machine
    return (machine.state() == "serving" and not machine.retiring
            and (reloads is None or machine.counters["reloads"] == reloads))


def reload_server(preload, modules=()):
    """The real reload server and its warm process, as `unstuck serve` makes them from the environment the test
    set (APP_DIR, PORT, UNSTUCK_RUN_DIR ...), the warm process importing `modules` ahead; a generator for a
    fixture to yield from: everything it started is stopped after the test."""
    from unstuck import config
    from unstuck.reload.reloader import Reloader
    from unstuck.reload.warm_process_client import WarmProcesses

    reloader = Reloader(config.load())
    reloader.sock = reloader.bind()
    reloader.warm = WarmProcesses(reloader.sock.fileno(), preload, reloader.events, True)
    reloader.warm.start(set(modules))
    yield reloader
    reloader.act(reloader.machine.stop())
    drive(reloader, lambda: reloader.machine.finished, "every generation gone", timeout=60.0)
    reloader.warm.close()
    reloader.sock.close()
