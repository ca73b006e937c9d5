"""Opt-in debugger (UNSTUCK_DEBUG=1): each app generation listens for a debugpy client.

debugpy can only listen once per process, and the port is held by the previous generation (and its
debugpy adapter) until that one has retired; each new generation therefore waits in the background for
the port to come free, then listens, so a client can attach again after every reload without a restart.
"""

from __future__ import annotations

import socket
import sys
import threading
import time

WAIT_S = 30.0


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def listen_when_free(host: str, port: int) -> threading.Thread:
    def run() -> None:
        import debugpy

        deadline = time.monotonic() + WAIT_S
        while not _port_free(host, port):
            if time.monotonic() > deadline:
                print(f"WARNING:  [unstuck] debug port {port} still busy after {WAIT_S:g} s; no debugger this "
                      "generation", file=sys.stderr, flush=True)
                return
            time.sleep(0.1)
        try:
            debugpy.listen((host, port))
        except Exception as exc:  # noqa: BLE001 - a debugger problem must not take the app down
            print(f"WARNING:  [unstuck] debugpy could not listen on {host}:{port}: {exc}", file=sys.stderr, flush=True)
            return
        print(f"INFO:     [unstuck] debugger listening on {host}:{port} (debugpy); attach any time", flush=True)

    thread = threading.Thread(target=run, daemon=True, name="debugpy")
    thread.start()
    return thread
