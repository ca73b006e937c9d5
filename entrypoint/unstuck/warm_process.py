"""The warm process itself (this module runs inside it; warm_process_client.py is the reload server's side):
third-party modules imported once, a worker forked per reload.

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
                     {"event": "forked", "id": N, "pid": P} with a pidfd of the child attached when the
                     kernel has pidfd_open: the reload server signals through it, so a signal can never
                     reach another process that was given the pid after this child was reaped
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

from unstuck import warmup


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


SPARE_DELAY_S = 0.2
SPARE_READY = b"r"  # a spare's word that its warm-up is done: from then on it takes a request at once


def prefault() -> None:
    """In a spare, while it waits: copy the inherited heap now rather than on the critical path. A fork
    shares every page with the warm process until it is written to, and the first write to each (a
    reference count, a GC header) copies it: importing the app in a fresh fork paid ~4 ms of such copies
    (measured: a tiny FastAPI app's import 12.6 -> 8.3 ms in a fork that had collected first). A collection
    writes to the header of every tracked object, which copies nearly all of those pages at once."""
    import gc

    gc.collect()


def wait_for_request(sock: socket.socket) -> tuple[bytes, list[int]]:
    """In a spare: tell the warm process it is ready, then wait for its request. Nothing (b"") when the warm
    process drops it instead (a fresher spare replaces it, or it is stopping): closing its end with the
    ready word still unread resets the connection, an ordinary end here, not an error to print."""
    try:
        sock.send(SPARE_READY)
        data, fds, _, _ = socket.recv_fds(sock, 1 << 16, 4)
    except OSError:
        return b"", []
    return data, fds


def _run_worker(worker, settings, listen_fd: int, report_fd: int, failure) -> None:
    """In a forked child: run one worker generation, then exit with its status (never return)."""
    code = 1
    try:
        code = worker.run(settings, listen_fd, report_fd, os.getppid(), failure)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001 - report like an uncaught exception would
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


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

    def become_plain(*closing: socket.socket) -> None:
        """In a freshly forked child: a plain process again, holding none of this loop's descriptors."""
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGCHLD, signal.SIGTERM):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        selector.close()
        control.close()
        os.close(wake_r)
        os.close(wake_w)
        for sock in closing:
            sock.close()

    # A fork of this process takes a few milliseconds (its page tables are as large as what it imported):
    # a child is forked ahead of each request, and waits for it. `spare` is (pid, socket to it). Its
    # exit is not reported unless it was handed out: the reload server only knows the workers it asked for.
    spare: tuple[int, socket.socket] | None = None
    handed_out: set[int] = set()

    def fork_spare() -> None:
        nonlocal spare
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pid = os.fork()
        if pid == 0:
            become_plain(ours)
            worker.set_process_name("unstuck-spare")
            warmup.run_requests()
            worker.prepare_loop()
            prefault()
            data, fds = wait_for_request(theirs)
            theirs.close()
            if not data:  # replaced by a fresher one, or the warm process is gone
                os._exit(0)
            request = json.loads(data)
            failure = Failure.from_dict(request["failure"]) if request.get("failure") else None
            _run_worker(worker, settings, listen_fd, fds[0], failure)
        theirs.close()
        spare = (pid, ours)

    def drop_spare() -> None:
        nonlocal spare
        if spare is not None:
            spare[1].close()  # it exits on the end of its socket, and is reaped without a word
            spare = None

    def spare_is_ready() -> bool:
        try:
            return spare[1].recv(len(SPARE_READY), socket.MSG_DONTWAIT) == SPARE_READY
        except (BlockingIOError, OSError):
            return False

    def hand_out(request: dict, fds: list[int]) -> None:
        nonlocal spare
        if spare is not None and not spare_is_ready():
            # Still warming up (a save right after the previous reload, or right after a start): a fresh
            # fork now beats waiting for it. It is ended, not left to compete for the CPU.
            os.kill(spare[0], signal.SIGKILL)
            drop_spare()
        if spare is not None:
            pid, sock = spare
            spare = None
            socket.send_fds(sock, [json.dumps(request).encode()], fds)
            sock.close()
        else:
            pid = os.fork()
            if pid == 0:
                become_plain()
                failure = Failure.from_dict(request["failure"]) if request.get("failure") else None
                _run_worker(worker, settings, listen_fd, fds[0], failure)
        handed_out.add(pid)
        for fd in fds:
            os.close(fd)
        # Opened before this process can reap the child (it only reaps in this loop), so the pidfd
        # is certainly this child's.
        try:
            pidfd = [os.pidfd_open(pid)]
        except (AttributeError, OSError):  # kernel < 5.3 or a seccomp profile that forbids it
            pidfd = []
        socket.send_fds(control, [json.dumps({"event": "forked", "id": request["id"], "pid": pid}).encode()],
                        pidfd)
        for fd in pidfd:
            os.close(fd)

    # Modules to import between requests, one at a time, so that a fork is never kept waiting on them.
    to_import: collections.deque[str] = collections.deque()
    imported = 0
    spare_due: float | None = None
    fork_spare()
    while True:
        timeout = 0 if to_import else None
        if spare_due is not None:
            timeout = max(0.0, min(timeout if timeout is not None else 1e9, spare_due - time.monotonic()))
        ready = selector.select(timeout=timeout)
        if spare_due is not None and time.monotonic() >= spare_due:
            spare_due = None
            if spare is None:
                fork_spare()
        if not ready and to_import:
            imported += preload([to_import.popleft()], settings.app_dir)
            if not to_import:
                send(event="preloaded", modules=imported, warmed=warmup.run())
                imported = 0
                drop_spare()  # it lacks what was just imported
                fork_spare()
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
                    if pid in handed_out:
                        handed_out.discard(pid)
                        send(event="exit", pid=pid, code=os.waitstatus_to_exitcode(status))
                continue
            message, fds, _, _ = socket.recv_fds(control, 1 << 16, 4)
            if not message:  # the reloader is gone
                if spare is not None:
                    pid = spare[0]
                    drop_spare()
                    # It exits on the end of its socket: reaped here (within a second), not by PID 1.
                    deadline = time.monotonic() + 1.0
                    while os.waitpid(pid, os.WNOHANG) == (0, 0) and time.monotonic() < deadline:
                        time.sleep(0.01)
                return
            request = json.loads(message)
            if request.get("op") == "preload":
                to_import.extend(name for name in listed(preload_file) if name not in sys.modules)
                continue
            hand_out(request, fds)
            # The next spare a little later: forking takes a core for milliseconds, which the worker just
            # handed out needs for importing the app. A save before then is forked at once instead.
            spare_due = time.monotonic() + SPARE_DELAY_S


def main(argv: list[str]) -> int:
    import argparse

    from unstuck import config as config_mod
    from unstuck.worker import die_with_parent, set_process_name

    parser = argparse.ArgumentParser(prog="unstuck warm-process")
    parser.add_argument("--control-fd", type=int, required=True)
    parser.add_argument("--listen-fd", type=int, required=True)
    parser.add_argument("--parent-pid", type=int, required=True)
    parser.add_argument("--preload", default="", help="file with one module name per line")
    args = parser.parse_args(argv)

    die_with_parent(args.parent_pid)
    set_process_name("unstuck-warm")
    # supervisord's stop signal reaches the whole group: the workers forked here shut down gracefully
    # on it, and this process must outlive them (they are killed when it dies), so it does not act on it
    # and exits when the reloader closes the control socket. Blocked, not ignored: a child inherits the
    # mask, so a stop sent to a worker the moment it is forked stays pending until the worker can act on
    # it (worker.run unblocks it); an ignored signal would be discarded, and that worker never stopped.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    settings = config_mod.load(check_dirs=False)
    from unstuck import project_env

    project_env.activate(settings.app_dir, settings.project_env)  # the app's packages, before preloading them
    control = socket.socket(fileno=args.control_fd)
    started = time.monotonic()
    loaded = preload(["uvicorn", "unstuck.worker", *listed(args.preload)], settings.app_dir)
    warmed = warmup.run()
    from unstuck import worker

    worker.configure_logging(settings)  # once here, not in every worker (see worker.configure_logging)
    control.send(json.dumps({"event": "ready", "modules": loaded, "warmed": warmed,
                             "seconds": round(time.monotonic() - started, 3)})
                 .encode())
    serve(control, args.listen_fd, args.preload, settings)
    return 0
