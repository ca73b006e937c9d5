"""The warm process itself (this module runs inside it; warm_process_client.py is the reload server's side):
third-party modules imported once, a worker forked per reload.

A reload with uvicorn pays a fresh interpreter plus every third-party import (FastAPI alone is ~0.2 s);
a fork of a process that already holds them costs milliseconds, and the child imports only the user's
code. This process imports uvicorn, unstuck's worker and the modules the app used on its last good run
(never the user's own files), then forks a worker whenever the reloader asks. It is single-threaded so
that fork is safe. It reports each child's pid and exit status to the reloader, which otherwise could
not wait for processes that are not its children.

It talks to the reload server on a SOCK_SEQPACKET socket, one message per packet: the requests and messages
of wire.py (listed in ARCHITECTURE.md, "The wire protocols"). A fork request carries the worker's report
pipe; the answer (wire.Forked) carries a pidfd of the child when the kernel has pidfd_open: the reload server
signals through it, so a signal can never reach another process that was given the pid after this child was
reaped.

Besides a spare (third-party modules only), it keeps an app layer: a fork that has imported the user's
modules a save is unlikely to change (app_layer.py), then loaded the app as a worker does up to the first module
saved lately (paused_load.py), which becomes the next generation when nothing it read changed.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import importlib
import json
import os
import selectors
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Callable

from unstuck import wire
from unstuck.processes import adopt_orphans, set_process_name
from unstuck.user_files import is_under
from unstuck.warm import (app_layer, code_memo, dependant_memo, done_ahead, field_memo, import_order, layer_successor,
                          orm_ahead, paused_load, prefault, route_memo, router_replay, seeds, warmup)


def listed(preload_file: str) -> list[str]:
    """The module names in the preload file the reloader keeps (one per line; none if it is missing)."""
    try:
        return Path(preload_file).read_text().split() if preload_file else []
    except OSError:
        return []


def import_cleanly(name: str) -> bool:
    """Import `name`; when that fails, forget every module the attempt added, so that what a fork inherits is
    exactly what clean imports left (no module that swallowed the failure of an optional import, no package
    whose submodule failed half-way): a fork must never start from a state a fresh process cannot reach."""
    before = set(sys.modules)
    try:
        importlib.import_module(name)
        return True
    except BaseException:  # noqa: BLE001 - a module that fails here is simply imported by the worker
        for added in set(sys.modules) - before:
            sys.modules.pop(added, None)
        return False


# sys.path as this process was started with (PYTHONPATH may name directories inside APP_DIR), before preload
# hid the user's tree.
_full_sys_path: list[str] | None = None


def preload(names: list[str], app_dir: Path, stop_at_failure: bool = False) -> tuple[int, str | None]:
    """Import `names` in order: how many imported, and the first that failed. With `stop_at_failure` (the
    modules the app used, listed in the order it imported them), nothing after a failure is imported: a
    module that fails here (Django's AppRegistryNotReady, a setting read at import time) marks the point
    where the app's own code had set its framework up, and what the app imported after it may depend on
    that too. Guesses (`stop_at_failure` False) are independent libraries: a failing one is skipped."""
    # The user's tree must not be importable here: a same-named module would be frozen into the fork. (A fork
    # puts these entries back: see _run_worker.)
    global _full_sys_path
    if _full_sys_path is None:
        _full_sys_path = list(sys.path)
    sys.path[:] = [p for p in sys.path if p not in ("", ".") and not is_under(p, app_dir)]
    loaded, failed = 0, None
    for name in names:
        if name in sys.modules or import_cleanly(name):
            loaded += 1
        elif failed is None:
            failed = name
            if stop_at_failure:
                break
    return loaded, failed


SPARE_DELAY_S = 0.2
# Build the next app layer beside a reload when the process may run on more than one core (see hand_out).
LAYER_BESIDE_RELOAD = len(os.sched_getaffinity(0)) > 1
SPARE_READY = b"r"  # a spare's word that its warm-up is done: from then on it takes a request at once


def wait_for_request(sock: socket.socket, ready: bytes = SPARE_READY,
                     meanwhile: Callable[[Callable[[], bool]], bool] | None = None) -> tuple[bytes, list[int]]:
    """In a spare: tell the warm process it is ready, then wait for its request. Nothing (b"") when the warm
    process drops it instead (a fresher spare replaces it, or it is stopping): closing its end with the
    ready word still unread resets the connection, an ordinary end here, not an error to print. While no
    request is there, `meanwhile(stop)` is called every MEANWHILE_EVERY_S until it says it is done (True), for
    at most MEANWHILE_FOR_S (`stop()`: whether the request came)."""
    try:
        sock.send(ready)
        layer_successor.wait_doing(sock, meanwhile, MEANWHILE_EVERY_S, MEANWHILE_FOR_S)
        data, fds, _, _ = socket.recv_fds(sock, 1 << 16, 4)
    except OSError:
        return b"", []
    return data, fds


# A layer of a chain that took its turn before its chain's records were written (the pages its workers write,
# layer_successor.py; what its first worker did that can be done ahead, done_ahead.py), and a twin waiting for its
# turn, look for them this often while they wait, for this long (the chain's first worker writes them after its
# first answer).
MEANWHILE_EVERY_S = 0.1
MEANWHILE_FOR_S = 30.0

# A layer whose imports took less than this is not copied when it serves a save (layer_successor.py), and the next
# one is built after the reload's first answer (not beside the reload, see hand_out): ready before a person's next
# save (at the bench's pace 1.5 s after the answer). A worker that shares its pages with a copy pays a fault for
# each page it then writes: on the bench's realistic app (40 modules, FastAPI, SQLModel; its layer imports in
# 0.16 s) a reload took 0.18 s with copies and 0.08 s without (imported phase 0.11 s vs 0.015 s). On bakerydemo
# (layer 0.4-0.7 s): 0.33 s with copies, 0.38 s rebuilt beside the reload, 0.29 s rebuilt after its answer. On
# mealie (367 modules) a layer takes 2-8 s to import, and its copy saves that at every save.
COPY_LAYERS_SLOWER_THAN_S = 1.0

# The layer's ready message lists the files it holds; one packet must stay within a socket's default send
# buffer (about 200 kB): an app with more files than that (a few thousand) does without a layer.
LAYER_READY_MAX = 150_000


def build_layer(names: list[str], settings, recorded: dict[str, tuple] | None = None,
                read: paused_load.FilesRead | None = None) -> dict | str:
    """In the app layer's process: import the user's modules `names` the way a worker finds them; the files
    it then holds (real path -> stamp), or why it cannot stand in for a fresh worker. What those imports
    print is dropped: the worker that imported them before said it already, and the layer may be thrown
    away unused."""
    from unstuck.app import loading

    os.chdir(settings.app_dir)
    if str(settings.app_dir) not in sys.path:
        sys.path.insert(0, str(settings.app_dir))
    fds_before = set(os.listdir("/proc/self/fd"))
    speak = silence()
    try:
        loading.prepare(settings.app_module, settings.app_dir)  # discovery's sys.path and environment
        for name in names:
            if name in sys.modules:
                continue  # imported already by one before it (its package, or the entry module's framework setup)
            entry = (recorded or {}).get(name)
            if entry is not None:
                import_order.replaying(name, entry[2], entry[3])
            try:
                importlib.import_module(name)
            except BaseException as exc:  # noqa: BLE001 - Django's AppRegistryNotReady, a missing setting ...
                return f"importing {name} alone fails ({type(exc).__name__})"
    except Exception as exc:  # noqa: BLE001 - discovery itself: never a reason for the layer to crash
        return f"the app could not be resolved ({type(exc).__name__})"
    finally:
        speak()
    return cannot_stand_in(fds_before) or held_files(settings, read)


def silence() -> Callable[[], None]:
    """Send what this process prints to nothing, until the function returned is called (once or more)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    spoken: set[int] = set()

    def speak() -> None:
        if saved[0] in spoken:
            return
        spoken.add(saved[0])
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            os.close(fd)

    return speak


def cannot_stand_in(fds_before: set[str]) -> str | None:
    """Why this process, after the imports made since `fds_before` were open, is not what a fresh worker would be.
    A fork has none of its parent's threads, and shares its descriptors: an import that started a thread (a
    scheduler, an SDK's sender) or left a file or connection open would not behave as in a fresh worker."""
    import threading

    if threading.active_count() > 1:
        return "an import started a thread"
    for fd in sorted(set(os.listdir("/proc/self/fd")) - fds_before, key=int):
        if not _shared_like_a_fresh_one(int(fd)):
            return f"an import left {_describe_fd(int(fd))} open"
    return None


def held_files(settings, read: paused_load.FilesRead | None = None) -> dict:
    """The project's files this process holds (real path -> stamp, None for a file that is not there): its user
    modules' (those whose import is in progress included), and what else its imports `read` (paused_load.py)."""
    from unstuck.generation.worker import modules_by_origin

    real_paths = {os.path.realpath(entry[1]) for entry in modules_by_origin(settings.app_dir)[1]}
    real_paths |= read.paths() if read is not None else set()
    return {path: app_layer.stamp(path) for path in real_paths}


def _shared_like_a_fresh_one(fd: int) -> bool:
    """A descriptor an import opened that a worker may inherit from the layer and use as if it had opened it
    itself: a regular file opened write-only for appending (a log file's handler). Every write appends, whoever
    writes, so sharing the open file is the same as opening it again. Anything else (a socket, a database
    connection, a file read or written at an offset) would be shared between the layer and its worker."""
    import stat

    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False
        with open(f"/proc/self/fdinfo/{fd}") as f:
            flags = int(next(line.split()[1] for line in f if line.startswith("flags:")), 8)
    except (OSError, StopIteration, ValueError):
        return False
    return flags & os.O_ACCMODE == os.O_WRONLY and bool(flags & os.O_APPEND)


def _describe_fd(fd: int) -> str:
    try:
        target = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return "a file or socket"
    return "a socket" if target.startswith("socket:") else f"{target!r}" if target.startswith("/") else target


def _is_empty(path: str) -> bool:
    try:
        return os.path.getsize(path) == 0
    except OSError:
        return True


def entry_module(settings) -> str | None:
    """The module that defines the app (APP_MODULE, or what discovery finds: files are read, nothing is
    imported)."""
    from unstuck.app import discovery

    try:
        found = discovery.resolve(settings.app_module, settings.app_dir)
    except Exception:  # noqa: BLE001 - only a guess for the app layer
        return None
    return found.import_string.partition(":")[0] if isinstance(found, discovery.Found) else None


def _run_worker(worker, settings, listen_fd: int, report_fd: int, failure, source: str) -> None:
    """In a forked child: run one worker generation, then exit with its status (never return)."""
    _worker_sys_path()
    _as_worker(lambda: worker.run(settings, listen_fd, report_fd, os.getppid(), failure, source))


def _worker_sys_path() -> None:
    if _full_sys_path is not None:  # the worker imports as a fresh interpreter would: PYTHONPATH as given
        sys.path[:] = _full_sys_path + [p for p in sys.path if p not in _full_sys_path]


def _as_worker(run: Callable[[], int]) -> None:
    """In a forked child that is a worker from now on: `run()` it, then exit with its status (never return)."""
    # Everything inherited from the warm process (every imported module, and a layer's user modules) lives as
    # long as the worker: without this, the first full collection the app's allocations trigger walks all
    # of it, tens of milliseconds at a random moment of a reload or a request (and copies every page it
    # touches). Only what the worker itself allocates is collected from now on.
    import gc

    gc.freeze()
    code = 1
    try:
        code = run()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001 - report like an uncaught exception would
        import traceback

        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        from unstuck.generation import output

        output.drain()
        os._exit(code)


def keep_fastapi_routes() -> None:
    """In a child that becomes a worker (spare, fork, app layer): the routes a FastAPI app's include_router copies
    take the fields (field_memo.py) and, on FastAPI 0.115, the analyses (dependant_memo.py) built for the first; a
    copy made with the same arguments (a router included without a prefix) the whole route (route_memo.py), and
    a chain's next layer includes ahead what its worker included (router_replay.py)."""
    field_memo.install()
    dependant_memo.install()
    route_memo.install()
    if route_memo.installed is not None:  # its routes are what the replays leave ahead
        router_replay.install()


class AtStopFailed(str):
    """Why a layer cannot be used: a module it imported at the stop failed (the next one goes without them)."""


def import_at_stop(at_stop: list) -> AtStopFailed | None:
    """In a layer stopped inside a hot module's import: import each module of `at_stop` (app_layer.at_stop) whose
    left-out modules have all started (a running package is in sys.modules); why the layer cannot be used, if one
    fails (it may need what a fresh process imports before it, and what it did before failing may have registered
    something a fresh process would not have)."""
    for name, needs in at_stop:
        if name in sys.modules or not all(need in sys.modules for need in needs):
            continue
        try:
            importlib.import_module(name)
        except BaseException as exc:  # noqa: BLE001 - the app's own: this layer is not used, the next stops without
            return AtStopFailed(f"importing {name} at the stop fails ({type(exc).__name__})")
    return None


class _CannotStandIn(Exception):
    """Raised out of the app's load at the stop, through the app's frames, to end it: this layer cannot be used."""


@dataclasses.dataclass
class Layer:
    """The app layer as the warm process sees it."""

    pid: int | None  # None: a layer's copy, adopted, whose word (with its pid) has not come yet
    sock: socket.socket  # to it: its ready word, then the fork request
    names: list[str]  # the user's modules it imports
    # Then it loads the app as a worker does, up to the first of these modules (paused_load.py); None: it does not.
    stops: set[str] | None
    held: dict | None = None  # the files it holds (real path -> stamp), once it said it is ready
    copies: bool = False  # it forks its copy when it serves a save (said with its ready word)
    known: frozenset = frozenset()  # the files of the modules the app imported on its last run (its plan's list)


class WarmLoop:
    """Fork workers, a spare and an app layer as the reload server asks; one thread, one selector.

    `stopped_at`: the listed module whose import failed at start (nothing listed after it is imported here);
    `narrow`: the list is not imported at all (a fast path was wrong: generations._verify); `layer_off`: no
    app layer is built; `orm_ahead_off`: layers do not configure SQLAlchemy's mappers (orm_ahead.py). The methods
    under "in a child" run in a fork and never return."""

    def __init__(self, control: socket.socket, listen_fd: int, preload_file: str, settings, later: list[str] = (),
                 stopped_at: str | None = None, narrow: bool = False, layer_off: bool = False,
                 orm_ahead_off: bool = False) -> None:
        from unstuck.generation import worker
        from unstuck.errors.failure import Failure

        self.worker, self.Failure = worker, Failure
        self.control, self.listen_fd, self.preload_file, self.settings = control, listen_fd, preload_file, settings
        self.stopped_at, self.narrow, self.layer_off = stopped_at, narrow, layer_off
        self.orm_ahead_off = orm_ahead_off
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_w, False)
        signal.set_wakeup_fd(self.wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # only to wake the selector
        self.selector = selectors.DefaultSelector()
        self.selector.register(control, selectors.EVENT_READ)
        self.selector.register(self.wake_r, selectors.EVENT_READ)
        self.pid = os.getpid()
        # A layer forks its copy before it becomes a worker (layer_successor.py): only when that copy becomes
        # this process's child.
        self.successors = adopt_orphans()
        self.layer_seconds: float | None = None  # how long the last layer that said it was ready took to import

        # A fork of this process takes a few milliseconds (its page tables are as large as what it imported):
        # a child is forked ahead of each request, and waits for it. `spare` is (pid, socket to it). Its
        # exit is not reported unless it was handed out: the reload server only knows the workers it asked for.
        self.spare: tuple[int, socket.socket] | None = None
        self.spare_due: float | None = None
        self.handed_out: set[int] = set()
        # Every child not yet reaped, by pid: "spare", "layer" or "worker". The reaper removes each as it
        # reaps it, so a signal is only ever sent to a pid that is still this process's child (never to one
        # the kernel has since given to another process).
        self.children: dict[int, str] = {}
        # Pids reaped that were not (yet) known as children: a layer's copy is adopted before its word names it.
        self.reaped_unknown: collections.deque[int] = collections.deque(maxlen=64)
        self.answered: collections.deque[int] = collections.deque(maxlen=8)  # the last fork requests answered

        # The app layer. Built when the reload server says a reload is done (its first answer is out), or
        # beside a reload with a core to spare; a save before it is ready is served from the spare, as without it.
        self.layer: Layer | None = None
        self.hot: list[str] = []  # the files saved lately, newest first: the layer leaves them (and importers) out
        self.unusable: set[tuple[str, ...]] = set()  # plans whose layer could not stand in for a worker
        # Plans whose layer's load of the app (paused_load.py) could not stand in for a worker (it started a
        # thread, failed): their layers hold the planned modules only.
        self.no_stop: set[tuple[str, ...]] = set()
        self.no_at_stop: set[tuple[str, ...]] = set()  # plans whose layer failed importing app_layer.at_stop's
        self.no_orm_ahead: set[tuple[str, ...]] = set()  # plans whose layer failed configuring the mappers
        self.app_list = app_layer.list_file(preload_file)

        # Modules to import between requests, one at a time, so that a fork is never kept waiting on them:
        # (name, listed: one the app used, in the order it did; else a first-start guess).
        self.to_import: collections.deque[tuple[str, bool]] = collections.deque((name, False) for name in later)
        self.unscanned = set(later)  # first-start guesses, kept only if the project's sources import them (seeds.py)
        self.imported = 0

    def send(self, message) -> None:
        self.control.send(wire.encode(message))

    def kill_pid(self, pid: int | None) -> None:
        if pid in self.children:
            os.kill(pid, signal.SIGKILL)

    # -- in a child ---------------------------------------------------------------------------------------

    def become_plain(self, *closing: socket.socket) -> None:
        """In a freshly forked child: a plain process again, holding none of this loop's descriptors."""
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGCHLD, signal.SIGTERM):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        self.selector.close()
        self.control.close()
        os.close(self.wake_r)
        os.close(self.wake_w)
        for sock in closing:
            sock.close()

    def run_worker(self, request: wire.Fork, fds: list[int], source: str) -> None:
        keep_fastapi_routes()
        done_ahead.worker_begins()
        failure = self.Failure.from_dict(request.failure) if request.failure else None
        _run_worker(self.worker, self.settings, self.listen_fd, fds[0], failure, "" if failure else source)

    def serve_when_asked(self, theirs: socket.socket, ready: Callable[[], bytes], source: str,
                         copies: bool = False, resumes: bool = False) -> tuple[wire.Fork, list[int]]:
        """In a spare or an app layer: warm up, say `ready()`, wait for a request, and become the worker it asks
        for; exit if dropped instead (replaced by a fresher one, or stopping). With `copies` (an app layer, when
        this process adopts orphans), the layer's copy waits in its place for the next request: forked ahead (its
        twin, unless UNSTUCK_APP_LAYER_COPY_AHEAD=0), or when the request comes (layer_successor.py); no event loop
        is then made ahead (the copy would share it). An app layer stopped inside the app's load (`resumes`:
        paused_load.py) gets the request back: it resumes that load."""
        warmup.run_requests()
        self.worker.rehearse(self.settings)
        if copies:
            layer_successor.let_threads_end()
        else:
            self.worker.prepare_loop()
        while True:
            twin = None
            if copies and self.settings.layer_copy_ahead and layer_successor.runs_one_thread():
                layer_successor.begin_chain()
                # Before this process copies its pages; the twin does ahead, as it waits, what its chain's first
                # worker recorded (done_ahead.py): the twins it forks then share that with it.
                twin = layer_successor.fork_twin(self.pid, lambda stop: done_ahead.do(self.settings.run_dir, stop),
                                                 MEANWHILE_EVERY_S, MEANWHILE_FOR_S)
                if twin is layer_successor.TWINS_TURN:
                    continue  # the twin, the layer now: its own twin, its pages, its ready word
            # A layer with a twin copies only the pages its chain's workers write (the rest it shares with its twin),
            # once they are recorded, and does ahead what their record says (done_ahead.py): while it waits, if they
            # are not yet (and can be: not in the chain's first).
            pages = layer_successor.pages_to_copy(self.settings.run_dir) if twin else None
            prefault.copy_inherited_pages(pages)
            later = twin is not None and not layer_successor.first_of_chain()
            meanwhile = self.ahead_of_request(pages_copied=pages != []) if later else None
            data, fds = wait_for_request(theirs, ready(), meanwhile)
            if not data:
                os._exit(0)
            request = wire.decode_request(data)
            if twin is not None and not request.failure and twin.take_over():
                pass  # the twin waits in its place for the next request
            elif (copies and not request.failure and layer_successor.runs_one_thread()
                    and layer_successor.fork_copy(self.pid, fds)):
                continue  # the copy
            if twin is not None:
                twin.dismiss()
            theirs.close()
            if resumes and not request.failure:
                return request, fds
            self.run_worker(request, fds, source)

    def ahead_of_request(self, pages_copied: bool) -> Callable[[Callable[[], bool]], bool]:
        """In a layer of a chain, waiting: what it does while no request is there (wait_for_request's `meanwhile`):
        copy its chain's written pages once they are recorded (unless `pages_copied`), and do what its chain's
        first worker recorded (done_ahead.py), leaving it the moment a request comes; True once both are done."""
        copied = [pages_copied]

        def meanwhile(stop: Callable[[], bool]) -> bool:
            if not copied[0]:
                pages = layer_successor.pages_to_copy(self.settings.run_dir)
                if pages:
                    prefault.copy_inherited_pages(pages)
                copied[0] = bool(pages)
            done = done_ahead.do(self.settings.run_dir, stop)
            return copied[0] and done

        return meanwhile

    def serve_as_layer(self, theirs: socket.socket, names: list[str], stops: set[str] | None,
                       listed_modules: list, at_stop: list = (), orm: bool = False) -> None:
        """In the app layer: import the planned modules `names` (build_layer), then load the app as a worker does
        up to the first module of `stops` and wait there (paused_load.py); the request that comes resumes that
        load as its worker. With no `stops`, it waits with the planned modules only, and a request makes it a
        worker that loads the app. A layer that cannot stand in for a fresh worker says why, and is dropped."""
        began = time.monotonic()
        keep_fastapi_routes()
        read = paused_load.FilesRead(self.settings.app_dir)
        held = build_layer(names, self.settings, {entry[0]: entry for entry in listed_modules}, read)
        if isinstance(held, dict) and stops is not None:
            why = self.load_until_stop(theirs, stops, read, began, at_stop, orm)  # returns only if it cannot be used
            wait_for_request(theirs, json.dumps({"unusable": f"loading the app ahead: {why}", "names": names,
                                                 "load": True, "at_stop": isinstance(why, AtStopFailed),
                                                 "orm_ahead": isinstance(why, orm_ahead.Failed)}).encode())
            os._exit(0)
        if isinstance(held, dict):
            ready, copies = self.layer_ready_word(held, began)
            if ready is not None:
                read.stop()
                read.remove()
                self.serve_when_asked(theirs, ready, "app layer", copies=copies)  # a worker from here: never returns
        why = held if isinstance(held, str) else "too many files"
        wait_for_request(theirs, json.dumps({"unusable": why, "names": names}).encode())  # read, then dropped
        os._exit(0)

    def layer_ready_word(self, held: dict, began: float, stops_at: str | None = None, mappers: str | None = None
                         ) -> tuple[Callable[[], bytes] | None, bool]:
        """The layer's ready word (None when it would not fit in one packet) and whether it copies itself."""
        seconds = round(time.monotonic() - began, 3)
        copies = self.successors and seconds >= COPY_LAYERS_SLOWER_THAN_S
        word = {"held": held, "copies": copies, "seconds": seconds}
        if stops_at is not None:
            word["stops_at"] = stops_at
        if mappers:
            word["mappers"] = mappers

        def ready() -> bytes:  # names the pid: a copy says it with its own
            return json.dumps({**word, "pid": os.getpid()}).encode()

        return (ready if len(ready()) <= LAYER_READY_MAX else None), copies

    def load_until_stop(self, theirs: socket.socket, stops: set[str], read: paused_load.FilesRead,
                        began: float, at_stop: list = (), orm: bool = False) -> str:
        """The layer's load of the app (paused_load.py): it becomes the worker at the stop and never returns, or
        returns why it cannot stand in for one (a thread, a descriptor, a failure before the stop). At the stop it
        first imports the modules of `at_stop` (app_layer.at_stop) whose left-out packages are running by then,
        then, with `orm`, configures SQLAlchemy's mappers if that is what a fresh interpreter would do
        (orm_ahead.py)."""
        import gc

        settings = self.settings
        _worker_sys_path()
        failure = self.worker.enter_project(settings)
        if failure is not None:
            return f"the project's environment does not fit ({failure.exc_type})"
        fds_before = set(os.listdir("/proc/self/fd"))
        speak = silence()
        resumed: dict = {}

        def stop(name: str) -> None:
            """Before `name` is imported (or once the app is loaded): say what this layer holds, wait for the
            request, and go on as its worker."""
            why = import_at_stop(at_stop) if name else None
            mappers = orm_ahead.configure() if why is None and name and orm else None
            why = mappers if isinstance(mappers, orm_ahead.Failed) else why
            speak()
            why = why or cannot_stand_in(fds_before)
            ready, copies = (None, False) if why else self.layer_ready_word(held_files(settings, read), began, name,
                                                                            mappers)
            if why is None and ready is None:
                why = "too many files"
            if why is not None:
                resumed["why"] = why
                raise _CannotStandIn(why)
            read.stop()
            request, fds = self.serve_when_asked(theirs, ready, "app layer", copies=copies, resumes=True)
            gc.freeze()  # before the rest of the import, as for any worker (_as_worker)
            done_ahead.worker_begins()
            sock, reporter = self.worker.begin(self.listen_fd, fds[0], os.getppid(), "app layer")
            resumed.update(sock=sock, reporter=reporter, at=time.monotonic())

        try:
            loaded, _ = paused_load.load_until(lambda: self.worker.import_app(settings), stops, stop)
            read.remove()
            if "why" in resumed:  # raised at the stop (the load turned it into a failure, or the app caught it)
                return resumed["why"]
            if not resumed:  # the load ended without importing a hot module
                speak()
                if loaded.failure is not None:
                    return f"it fails ({loaded.failure.exc_type})"
                stop("")
        except BaseException as exc:  # noqa: BLE001 - unstuck's own or the interpreter's (the load catches the app's)
            if not resumed or "why" in resumed:
                speak()
                return resumed.get("why") or f"it fails ({type(exc).__name__})"

            def fail() -> int:
                raise exc

            _as_worker(fail)
        _as_worker(lambda: self.worker.serve_app(settings, resumed["sock"], resumed["reporter"], "app layer",
                                                 loaded=loaded, started=resumed["at"]) or 0)

    # -- the spare ----------------------------------------------------------------------------------------

    def fork_spare(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pid = os.fork()
        if pid == 0:
            self.become_plain(ours)
            set_process_name("unstuck-spare")
            self.serve_when_asked(theirs, lambda: SPARE_READY, "spare")
        theirs.close()
        self.children[pid] = "spare"
        self.spare = (pid, ours)

    def drop_spare(self) -> None:
        if self.spare is not None:
            self.spare[1].close()  # it exits on the end of its socket, and is reaped without a word
            self.spare = None

    def spare_is_ready(self) -> bool:
        try:
            return self.spare[1].recv(len(SPARE_READY), socket.MSG_DONTWAIT) == SPARE_READY
        except (BlockingIOError, OSError):
            return False

    # -- the app layer ------------------------------------------------------------------------------------

    def layer_plan(self, listed_modules: list) -> tuple[list[str] | None, list[str]]:
        """The modules the next layer imports (None: none worth a layer), and the hot files they leave out (where
        the layer's load of the app stops: paused_load.py).

        Before any save: the module that defines the app is the likeliest to be edited (in a small app it is
        all the routes; in a large one it only includes them, and leaving it out costs little). After: the
        files saved lately, newest first, but a central one (most modules import it) is left in
        (app_layer.left_out); fewer of them when leaving them all out leaves nothing worth importing, or made
        a layer that cannot stand in for a worker (a Django model saved two edits ago takes out the asgi.py
        that sets Django up, and nothing after it imports alone): the layer then holds the older ones, and a
        save of one of them is served from the spare, as without a layer."""
        entry = functools.cache(lambda: entry_module(self.settings))  # discovery reads files: only when needed
        out = app_layer.left_out(listed_modules, self.hot) if self.hot else []
        guesses = [out[:count] for count in range(len(out), 0, -1)] or [app_layer.entry_files(listed_modules, entry())]
        files = {entry[0]: entry[1] for entry in listed_modules}
        for guess in guesses:
            plan = app_layer.plan(listed_modules, guess)
            if tuple(plan) in self.unusable:
                continue
            # Nothing worth importing ahead: a one-module app's empty package __init__, or a framework's
            # packages without the bootstrap that sets it up; unless the layer's load of the app goes on past the
            # module that defines it to a hot one (the modules their importers import before it). A load with no
            # hot module to stop at would hold the whole app: only a save of a file it never imported could use it.
            if not all(_is_empty(files[name]) for name in plan):
                return plan, guess
            stops = paused_load.hot_names(listed_modules, guess)
            if tuple(plan) not in self.no_stop and stops and entry() not in stops:
                return plan, guess
        return None, []

    def fork_layer(self) -> None:
        use = self.settings.app_layer and not self.layer_off
        listed_modules = app_layer.read_list(self.app_list) if use else []
        names, hot = self.layer_plan(listed_modules)
        stops = None if names is None or tuple(names) in self.no_stop else paused_load.hot_names(listed_modules, hot)
        if self.layer is not None and self.layer.names == names and self.layer.stops == stops:
            return  # the one there holds just that (ready, or still importing)
        self.drop_layer(kill=True)
        if names is None:
            return
        at_stop = app_layer.at_stop(listed_modules, hot) if stops and tuple(names) not in self.no_at_stop else []
        orm = bool(stops) and not self.orm_ahead_off and tuple(names) not in self.no_orm_ahead
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pid = os.fork()
        if pid == 0:
            self.become_plain(ours)
            set_process_name("unstuck-layer")
            self.serve_as_layer(theirs, names, stops, listed_modules, at_stop, orm)
        theirs.close()
        self.children[pid] = "layer"
        self.layer = Layer(pid, ours, names, stops, known=frozenset(os.path.realpath(e[1]) for e in listed_modules))
        self.selector.register(ours, selectors.EVENT_READ)  # its ready message, read (and reported) at once

    def drop_layer(self, kill: bool = False) -> None:
        layer = self.layer
        if layer is not None:
            if kill and layer.held is None:
                self.kill_pid(layer.pid)  # still importing: it must not compete for the CPU
            if layer.held is None:
                self.selector.unregister(layer.sock)
            layer.sock.close()
            self.layer = None

    def layer_held(self, retry: bool = False) -> dict | None:
        """The files the layer holds, once it said it is ready (None before, or if it cannot be used; with
        `retry`, a layer that cannot be used is followed by the next plan, if there is one)."""
        layer = self.layer
        if layer is None:
            return None
        if layer.held is None:
            try:
                message = json.loads(layer.sock.recv(LAYER_READY_MAX + 1024, socket.MSG_DONTWAIT))
            except BlockingIOError:
                return None
            except (OSError, ValueError):  # it died before it was ready
                message = {"unusable": "it exited while importing"}
            if layer.pid is None and "held" not in message:
                # The copy a layer was to fork when it became a worker never came (the layer ran threads, or
                # a request to serve an error): the next layer is built as before.
                self.drop_layer()
                if retry:
                    self.fork_layer()
                return None
            if "unusable" in message:
                # What the next plan leaves out: the imports at the stop, the load of the app, or this plan.
                if message.get("at_stop"):
                    self.no_at_stop.add(tuple(message.get("names") or ()))
                elif message.get("orm_ahead"):
                    self.no_orm_ahead.add(tuple(message.get("names") or ()))
                else:
                    (self.no_stop if message.get("load") else self.unusable).add(tuple(message.get("names") or ()))
                self.send(wire.LayerState(ok=False, why=message["unusable"]))
                self.drop_layer()
                if retry:
                    self.fork_layer()  # with fewer of the hot files left out (or nothing, if every plan failed)
                return None
            self.selector.unregister(layer.sock)
            if layer.pid is None:  # a layer's copy (layer_successor.py), adopted by this process
                layer.pid = message["pid"]
                if layer.pid in self.reaped_unknown:  # and gone already: not a child of this process any more
                    self.drop_layer()
                    return None
                self.children[layer.pid] = "layer"
            layer.held = message["held"]
            layer.copies = bool(message.get("copies"))
            self.layer_seconds = message.get("seconds")
            files = sum(1 for stamp in layer.held.values() if stamp)  # not where a module looked for would be
            self.send(wire.LayerState(ok=True, pid=layer.pid, files=files, seconds=self.layer_seconds or 0.0,
                                      copies=layer.copies, stops_at=message.get("stops_at"),
                                      mappers=message.get("mappers")))
        return layer.held

    def hand_out_layer(self, request: wire.Fork, fds: list[int], changes: list[tuple[str, str]]) -> int | None:
        """The layer's pid, if it took the request: it is ready and holds nothing the saves changed."""
        if not changes or request.failure:
            return None  # not a reload of saves (the first generation, a restart, an error page): kept
        held = self.layer_held()
        if held is None or not app_layer.usable(held, changes, known=self.layer.known):
            self.drop_layer(kill=held is None)  # stale, or still importing beside this reload
            return None
        layer, self.layer = self.layer, None
        try:
            socket.send_fds(layer.sock, [wire.encode(request)], fds)
        except OSError:
            layer.sock.close()
            return None
        if not layer.copies:  # a layer quick to build (or no subreaper here): the next one is built anew
            layer.sock.close()
            return layer.pid
        # Its copy, forked before it becomes the worker, answers on the same socket once it is ready; its pid
        # comes with that word (layer_held). If no copy comes, the socket ends, and the next layer is built.
        self.layer = Layer(None, layer.sock, layer.names, layer.stops, known=layer.known)
        self.selector.register(layer.sock, selectors.EVENT_READ)
        return layer.pid

    # -- handing out a generation -------------------------------------------------------------------------

    def hand_out(self, request: wire.Fork, fds: list[int]) -> None:
        self.hand_out_generation(request, fds)
        quick = self.layer_seconds is not None and self.layer_seconds < COPY_LAYERS_SLOWER_THAN_S
        if LAYER_BESIDE_RELOAD and request.changes and not request.failure and not quick:
            # The next layer now, beside the reload, rather than after its first answer: a person's next save
            # often comes a second or two after that answer, and on a large project the layer takes seconds to
            # import. With a core to spare it costs the reload little (each import is single-threaded); if the
            # reload changes what the app imports, its report has the layer built again (fork_layer). A layer
            # that imports in under a second is built after the answer (the reload server asks for it), in time
            # for the next save, without taking memory bandwidth and a core from the reload.
            self.fork_layer()

    def hand_out_generation(self, request: wire.Fork, fds: list[int]) -> None:
        changes = [(kind, os.path.realpath(path)) for kind, path in request.changes or []]
        pid = self.hand_out_layer(request, fds, changes) if self.layer is not None else None
        self.hot = app_layer.hot_after(self.hot, changes)
        if pid is not None:
            self.hand_out_pid(request, pid, fds, "app layer")
            return
        ready_spare = self.spare is not None and self.spare_is_ready()
        if self.spare is not None and not ready_spare and changes:
            # Still warming up, and a save right after the previous reload: a fresh fork now beats waiting
            # for it, and it is ended, not left to compete for the CPU. A generation that is not a reload of
            # saves (a start's first, its "starting" page, a restart after a crash) is forked fresh too, but
            # the spare is kept for the next save, which often comes the moment the first page is served.
            self.kill_pid(self.spare[0])
            self.drop_spare()
        if ready_spare:
            (pid, sock), self.spare = self.spare, None
            try:
                socket.send_fds(sock, [wire.encode(request)], fds)
            except OSError:  # it died since it said it was ready: a fresh fork instead
                pid = None
            finally:
                sock.close()
            if pid is not None:
                self.hand_out_pid(request, pid, fds, "spare")
                return
        self.hand_out_fork(request, fds)

    def hand_out_fork(self, request: wire.Fork, fds: list[int]) -> None:
        pid = os.fork()
        if pid == 0:
            # Nor the sockets to a kept spare or layer: they would not see their end while it runs.
            kept = [self.spare[1]] if self.spare is not None else []
            self.become_plain(*kept, *([self.layer.sock] if self.layer is not None else []))
            self.run_worker(request, fds, "fork")
        self.hand_out_pid(request, pid, fds, "fork")

    def hand_out_pid(self, request: wire.Fork, pid: int, fds: list[int], source: str) -> None:
        self.answered.append(request.id)
        self.handed_out.add(pid)
        self.children[pid] = "worker"
        for fd in fds:
            os.close(fd)
        # Opened before this process can reap the child (it only reaps in this loop), so the pidfd
        # is certainly this child's.
        try:
            pidfd = [os.pidfd_open(pid)]
        except (AttributeError, OSError):  # kernel < 5.3 or a seccomp profile that forbids it
            pidfd = []
        socket.send_fds(self.control, [wire.encode(wire.Forked(request.id, pid, source))], pidfd)
        for fd in pidfd:
            os.close(fd)

    # -- the reload server's other requests ---------------------------------------------------------------

    def preload_listed(self, request: wire.Preload, fds: list[int]) -> None:
        """The modules the app used on its last good run, imported between requests from now on."""
        if not self.narrow and self.stopped_at is None:
            queued = {entry[0] for entry in self.to_import}
            self.to_import.extend((name, True) for name in listed(self.preload_file)
                                  if name not in sys.modules and name not in queued)

    def build_layer(self, request: wire.BuildLayer, fds: list[int]) -> None:
        self.fork_layer()

    def stop_orm_ahead(self, request: wire.NoOrmAhead, fds: list[int]) -> None:
        """A worker resumed from a layer could not prove the mappers configured there a fresh interpreter's: layers
        configure them no more (the one there now is built again without)."""
        self.orm_ahead_off = True
        self.drop_layer(kill=True)

    def no_layer(self, request: wire.NoLayer, fds: list[int]) -> None:
        """A layer served a failure that a fresh interpreter did not show: no layer from now on."""
        self.layer_off = True
        self.drop_layer(kill=True)

    # What each request of the reload server's (wire.py) does here.
    HANDLERS = {
        wire.Fork: hand_out,
        wire.Preload: preload_listed,
        wire.BuildLayer: build_layer,
        wire.NoLayer: no_layer,
        wire.NoOrmAhead: stop_orm_ahead,
    }

    def handle(self, request, fds: list[int]) -> None:
        try:
            self.HANDLERS[type(request)](self, request, fds)
        except Exception:  # noqa: BLE001 - one request's failure must not end the process serving all
            self.handle_failed(request, fds)
        # The next spare a little later: forking takes a core for milliseconds, which the worker just
        # handed out needs for importing the app. A save before then is forked at once instead.
        self.spare_due = time.monotonic() + SPARE_DELAY_S

    def handle_failed(self, request, fds: list[int]) -> None:
        """Log it once (with the traceback: it is unstuck's bug) and degrade only that: a fork request is
        answered with a plain fork, with no spare or layer; anything else is dropped."""
        import traceback

        print(f"unstuck: the warm process failed to handle {wire.tag_of(request)}; "
              "going on without its spare and app layer for it", file=sys.stderr)
        traceback.print_exc()
        try:
            self.drop_layer(kill=True)
            if isinstance(request, wire.Fork) and request.id not in self.answered:
                self.hand_out_fork(request, fds)
        except Exception:  # noqa: BLE001 - nothing more can be done for it: the reload server times it out
            traceback.print_exc()

    # -- the loop -----------------------------------------------------------------------------------------

    def run(self) -> None:
        """Until the reload server closes the control socket."""
        self.fork_spare()
        self.fork_layer()  # after a restart the app's modules are listed already: ready by the time it is served
        while True:
            timeout = 0 if self.to_import else None
            if self.spare_due is not None:
                timeout = max(0.0, min(timeout if timeout is not None else 1e9, self.spare_due - time.monotonic()))
            ready = self.selector.select(timeout=timeout)
            if self.spare_due is not None and time.monotonic() >= self.spare_due:
                self.spare_due = None
                if self.spare is None:
                    self.fork_spare()
            if not ready and self.to_import:
                self.import_next()
                continue
            for key, _ in ready:
                if key.fileobj is self.wake_r:
                    self.reap()
                elif key.fileobj is self.control:
                    message, fds, _, _ = socket.recv_fds(self.control, 1 << 16, 4)
                    if not message:  # the reload server is gone
                        self.stop()
                        return
                    self.handle(wire.decode_request(message), fds)
                elif self.layer is not None and key.fileobj is self.layer.sock:
                    self.layer_held(retry=True)  # between reloads: a next plan does not compete with one
                # else: a layer's socket dropped earlier in this round

    def import_next(self) -> None:
        """Between requests: one module more of those queued (or, first, the guesses' check)."""
        if self.unscanned:
            # Here, not before "ready": the first generation's fork is handed out by now.
            unused = self.unscanned - seeds.imported_by_sources(self.settings.app_dir, self.unscanned,
                                                                self.settings.ignore_patterns)
            self.to_import = collections.deque(entry for entry in self.to_import if entry[0] not in unused)
            self.unscanned = set()
            if unused:
                self.send(wire.SeedsSkipped(sorted(unused)))
            return
        name, is_listed = self.to_import.popleft()
        count, failed = preload([name], self.settings.app_dir)
        self.imported += count
        if failed is not None and is_listed:
            self.stopped_at = failed  # nothing listed after it (see preload)
            self.to_import = collections.deque(entry for entry in self.to_import if not entry[1])
        if not self.to_import:
            self.send(wire.Preloaded(self.imported, warmup.run()))
            self.imported = 0
            self.drop_spare()  # it lacks what was just imported
            self.fork_spare()

    def reap(self) -> None:
        """Every child that exited: the workers' exits are reported; a spare or a ready layer is dropped."""
        os.read(self.wake_r, 4096)
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if self.children.pop(pid, None) is None:
                self.reaped_unknown.append(pid)  # an adopted orphan (a layer's copy whose word is still unread)
            if self.spare is not None and self.spare[0] == pid:
                self.drop_spare()  # died while waiting: forked again when next due
                self.spare_due = time.monotonic() + SPARE_DELAY_S
            if self.layer is not None and self.layer.pid == pid and self.layer.held is not None:
                self.drop_layer()  # died after it said it was ready (one still importing says why)
            if pid in self.handed_out:
                self.handed_out.discard(pid)
                self.send(wire.ChildExit(pid, os.waitstatus_to_exitcode(status)))

    def stop(self) -> None:
        """The reload server is gone: the spare and the layer end on their sockets' end, reaped here (within a
        second), not by PID 1."""
        pids = [self.spare[0]] if self.spare is not None else []
        if self.layer is not None and self.layer.pid is not None:  # None: a layer's copy not yet heard of
            pids.append(self.layer.pid)
        self.drop_spare()
        self.drop_layer(kill=True)  # it serves nothing yet, and may be in the middle of an import
        deadline = time.monotonic() + 1.0
        for pid in pids:
            while os.waitpid(pid, os.WNOHANG) == (0, 0) and time.monotonic() < deadline:
                time.sleep(0.01)


def serve(control: socket.socket, listen_fd: int, preload_file: str, settings, later: list[str] = (),
          stopped_at: str | None = None, narrow: bool = False, layer_off: bool = False,
          orm_ahead_off: bool = False) -> None:
    """Fork workers, a spare and an app layer as the reload server asks (WarmLoop), until it goes."""
    WarmLoop(control, listen_fd, preload_file, settings, later, stopped_at, narrow, layer_off, orm_ahead_off).run()


def main(argv: list[str]) -> int:
    import argparse

    from unstuck import config as config_mod
    from unstuck.processes import die_with_parent, set_process_name

    parser = argparse.ArgumentParser(prog="unstuck warm-process")
    parser.add_argument("--control-fd", type=int, required=True)
    parser.add_argument("--listen-fd", type=int, required=True)
    parser.add_argument("--parent-pid", type=int, required=True)
    parser.add_argument("--preload", default="", help="file with one module name per line")
    parser.add_argument("--import", dest="also", default="", help="comma-separated modules to import too")
    parser.add_argument("--narrow", action="store_true", help="import none of the modules the preload file lists")
    parser.add_argument("--no-layer", action="store_true", help="build no app layer")
    parser.add_argument("--no-orm-ahead", action="store_true", help="layers do not configure SQLAlchemy's mappers")
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
    from unstuck.project import project_env

    project_env.activate(settings.app_dir, settings.project_env)  # the app's packages, before preloading them
    control = socket.socket(fileno=args.control_fd)
    started = time.monotonic()
    also = [name for name in args.also.split(",") if name]
    # Guesses that take most of a second to import (pandas) come after "ready", if the sources import them
    # (seeds.py): the first generation is not kept waiting for them.
    later = [name for name in also if name in seeds.IMPORTED_AFTER_READY]
    import_order.install(settings.app_dir)  # before any import: the spare, the layer and every fork inherit it
    code_memo.install()  # likewise: a layer of a chain compiles ahead what its worker will load (done_ahead.py)
    loaded, _ = preload(["uvicorn", "unstuck.generation.worker"], settings.app_dir)
    count, stopped_at = preload([] if args.narrow else listed(args.preload), settings.app_dir, stop_at_failure=True)
    loaded += count
    loaded += preload([name for name in also if name not in later], settings.app_dir)[0]
    warmed = warmup.run()
    from unstuck.generation import worker

    worker.configure_logging(settings)  # once here, not in every worker (see worker.configure_logging)
    try:
        control.send(wire.encode(wire.WarmStarted(loaded, warmed, stopped_at, round(time.monotonic() - started, 3))))
    except OSError:
        return 0  # the reload server is gone (stopped while this process was importing)
    serve(control, args.listen_fd, args.preload, settings, later, stopped_at, args.narrow, args.no_layer,
          args.no_orm_ahead)
    return 0
