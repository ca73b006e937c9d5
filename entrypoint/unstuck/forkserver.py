"""The warm process: third-party modules imported once, a worker forked per reload.

A reload with uvicorn pays a fresh interpreter plus every third-party import (FastAPI alone is ~0.2 s);
a fork of a process that already holds them costs milliseconds, and the child imports only the user's
code. This process imports uvicorn, unstuck's worker and the modules the app used on its last good run
(never the user's own files), then forks a worker whenever the reloader asks. It is single-threaded so
that fork is safe. It reports each child's pid and exit status to the reloader, which otherwise could
not wait for processes that are not its children.

Protocol on a SOCK_SEQPACKET socket (one JSON message per packet):
  reloader -> here:  {"op": "fork", "id": N, "failure": {...}|null} with the worker's report pipe attached
                     {"op": "preload"}: import what the preload file now lists too, between forks
  here -> reloader:  {"event": "ready", "modules": N, "seconds": S}
                     {"event": "forked", "id": N, "pid": P}
                     {"event": "exit", "pid": P, "code": C}   (C < 0: killed by signal -C, as in Popen)
"""

from __future__ import annotations

import collections
import importlib
import json
import os
import selectors
import signal
import socket
import sys
import time
from pathlib import Path


def listed(preload_file: str) -> list[str]:
    """The module names in the preload file the reloader keeps (one per line; none if it is missing)."""
    try:
        return Path(preload_file).read_text().split() if preload_file else []
    except OSError:
        return []


def preload(names: list[str], app_dir: Path) -> int:
    # The user's tree must not be importable here: a same-named module would be frozen into the fork.
    sys.path[:] = [p for p in sys.path if p not in ("", ".") and not p.startswith(str(app_dir))]
    loaded = 0
    for name in names:
        try:
            importlib.import_module(name)
            loaded += 1
        except BaseException:  # noqa: BLE001 - a module that fails here is simply imported by the worker
            continue
    return loaded


def serve(control: socket.socket, listen_fd: int, preload_file: str, settings) -> None:
    from unstuck import worker
    from unstuck.failure import Failure

    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # only to wake the selector
    selector = selectors.DefaultSelector()
    selector.register(control, selectors.EVENT_READ)
    selector.register(wake_r, selectors.EVENT_READ)

    def send(**message) -> None:
        control.send(json.dumps(message).encode())

    # Modules to import between requests, one at a time, so that a fork is never kept waiting on them.
    to_import: collections.deque[str] = collections.deque()
    imported = 0
    while True:
        ready = selector.select(timeout=0 if to_import else None)
        if not ready and to_import:
            imported += preload([to_import.popleft()], settings.app_dir)
            if not to_import:
                send(event="preloaded", modules=imported)
                imported = 0
            continue
        for key, _ in ready:
            if key.fileobj is wake_r:
                os.read(wake_r, 4096)
                while True:
                    try:
                        pid, status = os.waitpid(-1, os.WNOHANG)
                    except ChildProcessError:
                        break
                    if pid == 0:
                        break
                    send(event="exit", pid=pid, code=os.waitstatus_to_exitcode(status))
                continue
            message, fds, _, _ = socket.recv_fds(control, 1 << 16, 4)
            if not message:
                return  # the reloader is gone
            request = json.loads(message)
            if request.get("op") == "preload":
                to_import.extend(name for name in listed(preload_file) if name not in sys.modules)
                continue
            pid = os.fork()
            if pid == 0:
                # The child: a plain process again, then a worker generation.
                signal.set_wakeup_fd(-1)
                for sig in (signal.SIGCHLD, signal.SIGTERM):
                    signal.signal(sig, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.default_int_handler)
                selector.close()
                control.close()
                os.close(wake_r)
                os.close(wake_w)
                failure = Failure.from_dict(request["failure"]) if request.get("failure") else None
                code = 1
                try:
                    code = worker.run(settings, listen_fd, fds[0], os.getppid(), failure)
                except SystemExit as exc:
                    code = exc.code if isinstance(exc.code, int) else 1
                except BaseException:  # noqa: BLE001 - report like an uncaught exception would
                    import traceback

                    traceback.print_exc()
                finally:
                    sys.stdout.flush()
                    sys.stderr.flush()
                    os._exit(code)
            for fd in fds:
                os.close(fd)
            send(event="forked", id=request["id"], pid=pid)


def main(argv: list[str]) -> int:
    import argparse

    from unstuck import config as config_mod
    from unstuck.worker import die_with_parent, set_process_name

    parser = argparse.ArgumentParser(prog="unstuck forkserver")
    parser.add_argument("--control-fd", type=int, required=True)
    parser.add_argument("--listen-fd", type=int, required=True)
    parser.add_argument("--parent-pid", type=int, required=True)
    parser.add_argument("--preload", default="", help="file with one module name per line")
    args = parser.parse_args(argv)

    die_with_parent(args.parent_pid)
    set_process_name("unstuck-warm")
    # supervisord's stop signal reaches the whole group: the workers forked here shut down gracefully
    # on it, and this process must outlive them (they are killed when it dies), so it ignores it and
    # exits when the reloader closes the control socket.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    settings = config_mod.load(check_dirs=False)
    from unstuck import project_env
    project_env.activate(settings.app_dir, settings.project_env)  # the app's packages, before preloading them
    control = socket.socket(fileno=args.control_fd)
    started = time.monotonic()
    loaded = preload(["uvicorn", "unstuck.worker", *listed(args.preload)], settings.app_dir)
    control.send(json.dumps({"event": "ready", "modules": loaded, "seconds": round(time.monotonic() - started, 3)})
                 .encode())
    serve(control, args.listen_fd, args.preload, settings)
    return 0
