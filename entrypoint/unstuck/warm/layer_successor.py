"""An app layer forks the next one before it becomes a worker: the same modules, without importing them again.

An app layer (app_layer.py) is a fork of the warm process that has imported the user's modules a save is
unlikely to change; a save of the rest is served by it, and it is used up: it becomes that reload's worker.
The next layer then imports them all again, which on a large project takes as long as a cold start (5-8 s
on a FastAPI service with hundreds of modules, issue 18): a person's next save, a second or two later, came
before it was ready and was served from the spare, with a full import of the user's code.

So, the moment a request reaches it, a layer forks a copy of itself as it waits (nothing of the request
run yet), and only then becomes the worker. The copy says it is ready, as a layer the warm process built,
and serves the next save of the same files in the same few milliseconds. It is what the layer was, so it
is right wherever the layer was (the warm process still checks each save against what it holds).

How, and why so:
- Only a layer that took a second or more to import (warm_process.COPY_LAYERS_SLOWER_THAN_S): a worker
  sharing its pages with a copy pays a fault for each page it writes (on the bench's realistic app a reload
  took twice as long), while a layer quicker to import is built anew before a person's next save.
- The copy must be the warm process's child (it reaps it, signals it through a pidfd, and reports its exit
  when it becomes a worker), never the worker's, whose exit at the next reload would take it along (a
  worker dies with its parent). The layer forks a go-between that forks the copy and exits at once: the
  copy is orphaned and, the warm process being a subreaper (processes.adopt_orphans), becomes its child.
  The go-between is left a zombie of the worker until that worker exits (reaping it would cost the
  reload a wait, and nothing else waits for it).
- Not when the layer runs threads of its own (an import started one): a fork has only the thread that
  forked, and what it then serves could differ from what a fresh interpreter serves.
- Not from an event loop made ahead: the copy would share its epoll instance with the worker, and a loop
  closed in one would remove the other's descriptors from it. A layer's worker makes its loop itself.
- The copy closes the request's descriptors (the report pipe is the worker's alone: the reload server
  reads the worker's end of it by its close) and copies its pages again while it waits (prefault.py).

Forked ahead (its twin): a copy forked when the request comes shares every page with the worker while
that worker imports the rest of the app, and the worker then pays a fault and a copy for each page it
writes: on mealie 9,700 of them, a reload's import 0.18 s against 0.13-0.15 s on pages nobody shares. So a
layer that copies itself forks its copy as soon as it is ready (UNSTUCK_APP_LAYER_COPY_AHEAD, on by
default), and copies ahead the pages its worker will write. The twin waits unseen, on a pipe from its
layer: when the layer takes a request it tells its twin, which then forks a twin of its own, copies its
pages and says it is ready; when the layer ends without (dropped, killed, a request for an error page) the
pipe ends and so does the twin. When no twin could be made, or with UNSTUCK_APP_LAYER_COPY_AHEAD=0, the
copy is forked when the request comes, as above.

Which pages (a chain's): a layer and its twins have one layout (each is a fork of the one before, which
changed nothing while it waited), so the pages one worker made from the chain wrote are the pages the next
will write. A layer of a chain copies none of its pages until they are known, so that what its worker holds
alone after its first answer is what it wrote (and allocated): the first workers of a chain record that
(prefault.written_runs, in the run directory), and a twin copies only those pages, as it takes its turn or,
if they are not recorded by then, as it waits (its own twin shares the rest with it). The first save of a
chain pays for the pages it writes, as a worker sharing its pages with a copy made when the save came did;
after it a worker writes to pages nobody shares, and a layer and its twin hold the layer's memory once plus
the pages its workers write (mealie: 75 of its 185 MB; the two layers 208 MB, where a whole copy each made
374). Copying pages never changes what is served: a record that is wrong (a pid reused for another chain)
costs faults or memory only.
"""

from __future__ import annotations

import json
import os
import select
import time

ADOPTED_WITHIN_S = 1.0  # the go-between exits right after its fork: its copy is the warm process's child at once
RECORDED_BY = 3  # how many of a chain's workers record the pages they wrote (their union is kept)
PAGES_FILE = "layer-pages.json"

# In an app layer that forks its twins, each of them, and the workers they become: the pid of the first of them
# (the layout they all have); and whether the chain's record was full when this layer read it (its worker then
# need not read it again after its first answer to learn so).
chain: int | None = None
_record_full = False
TURN = b"t"  # a layer's word to its twin: it took a request, the twin is the layer now


def let_threads_end(within_s: float = 1.0) -> None:
    """Give threads that are ending (a warm-up's thread pool, stopped with its loop) the moment they need."""
    import threading

    deadline = time.monotonic() + within_s
    for thread in threading.enumerate():
        if thread is not threading.main_thread():
            thread.join(max(0.0, deadline - time.monotonic()))


def runs_one_thread() -> bool:
    """Whether this process has a single thread (the kernel's count: threads Python did not start count)."""
    try:
        return len(os.listdir("/proc/self/task")) == 1
    except OSError:
        return False


def begin_chain() -> None:
    """In an app layer that forks its twins: the first of a chain, unless it is one of a chain already."""
    global chain
    if chain is None:
        chain = os.getpid()


def first_of_chain() -> bool:
    """Whether this layer is the first of its chain: its own worker is the chain's first, so no record can come
    while it waits."""
    return chain == os.getpid()


def pages_to_copy(run_dir) -> list[tuple[int, int]]:
    """In a layer of a chain: the pages its chain's workers wrote (none until they are recorded)."""
    global _record_full
    recorded = _recorded(run_dir)
    _record_full = recorded is not None and recorded["workers"] >= RECORDED_BY
    return [tuple(run) for run in recorded["runs"]] if recorded is not None else []


def record_written_pages(run_dir) -> None:
    """In a worker made from a layer of a chain, after its first answer: add the pages it holds alone (those it
    wrote, its layer having copied only pages its chain's workers wrote before) to the chain's record; only its
    first RECORDED_BY workers (reading the page map takes some 15 ms on a large app)."""
    if chain is None or _record_full:
        return
    from unstuck.warm import prefault

    recorded = _recorded(run_dir) or {"chain": chain, "workers": 0, "runs": []}
    if recorded["workers"] >= RECORDED_BY:
        return
    written = prefault.written_runs()
    if not written:
        return
    runs = prefault.merged_runs([tuple(run) for run in recorded["runs"]], written)
    # No run directory to write to: the chain's layers copy nothing ahead (their workers pay as they write).
    write_chain_record(run_dir, PAGES_FILE, {"workers": recorded["workers"] + 1, "runs": runs})


def _recorded(run_dir) -> dict | None:
    """This chain's record of written pages, if there is one."""
    return chain_record(run_dir, PAGES_FILE, {"workers": int, "runs": list})


def chain_record(run_dir, name: str, fields: dict[str, type]) -> dict | None:
    """The record `name` in the run directory, if it is this chain's and has `fields` of their types."""
    try:
        with open(os.path.join(str(run_dir), name)) as record:
            recorded = json.load(record)
    except (OSError, ValueError):
        return None
    if (not isinstance(recorded, dict) or chain is None or recorded.get("chain") != chain
            or not all(isinstance(recorded.get(field), kind) for field, kind in fields.items())):
        return None
    return recorded


def write_chain_record(run_dir, name: str, content: dict) -> None:
    """Write `content` as this chain's record `name` in the run directory, whole or not at all (nothing when there
    is no run directory to write to)."""
    path = os.path.join(str(run_dir), name)
    try:
        with open(f"{path}.{os.getpid()}", "w") as out:
            json.dump({"chain": chain, **content}, out)
        os.replace(f"{path}.{os.getpid()}", path)
    except OSError:
        pass


def wait_doing(fd, meanwhile, every_s: float, for_s: float) -> None:
    """Until `fd` is readable: call `meanwhile(stop)` every `every_s` until it says it is done (True), for at most
    `for_s` (`stop()`: whether `fd` is readable now); without `meanwhile`, return at once."""
    until = time.monotonic() + for_s

    def stop() -> bool:
        return bool(select.select([fd], [], [], 0)[0])

    while meanwhile is not None and not select.select([fd], [], [], every_s)[0]:
        if meanwhile(stop) or time.monotonic() > until:
            meanwhile = None


class Twin:
    """A layer's side of its twin (forked ahead, waiting on a pipe from it)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def take_over(self) -> bool:
        """Tell the twin it is the layer now; False if it is gone (the layer then forks its copy itself)."""
        try:
            return os.write(self.fd, TURN) == len(TURN)
        except OSError:  # EPIPE: the twin ended (not adopted, or killed)
            return False
        finally:
            self.dismiss()

    def dismiss(self) -> None:
        """End the twin (the layer ends, or becomes a worker without a successor): its pipe ends."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


TWINS_TURN = "twin's turn"  # what fork_twin returns in the twin once its layer took a request


def fork_twin(warm_pid: int, meanwhile=None, every_s: float = 0.1, for_s: float = 30.0) -> Twin | str | None:
    """In a ready layer that copies itself: fork its twin (a child of the warm process, as a copy is). In the
    layer, the Twin (None when none could be made); in the twin, TWINS_TURN, once the layer took a request (it
    then goes on as the layer did before it forked); a twin whose layer ends without one exits. While the twin
    waits, `meanwhile(stop)` is called every `every_s` until it says it is done (True), for at most `for_s`
    (`stop()`: whether its turn came): what it does then, the twins it forks later hold too."""
    try:
        turn_r, turn_w = os.pipe()
    except OSError:
        return None
    try:
        between = os.fork()
    except OSError:
        os.close(turn_r)
        os.close(turn_w)
        return None
    if between != 0:
        os.close(turn_r)
        try:
            os.waitpid(between, 0)  # it exits at once; no request is waiting on this layer yet
        except ChildProcessError:
            pass
        return Twin(turn_w)
    try:
        if os.fork() != 0:
            os._exit(0)  # the go-between
        os.close(turn_w)
        deadline = time.monotonic() + ADOPTED_WITHIN_S
        while os.getppid() != warm_pid:
            if time.monotonic() > deadline:
                os._exit(0)  # not adopted: its layer's take_over finds the pipe broken and forks a copy itself
            time.sleep(0.0005)
        wait_doing(turn_r, meanwhile, every_s, for_s)
        word = os.read(turn_r, len(TURN))
        if word != TURN:
            os._exit(0)  # its layer ended without a request for it
        os.close(turn_r)
        return TWINS_TURN
    except BaseException:  # noqa: BLE001 - a twin that cannot take its turn ends here, never as a second worker
        os._exit(0)


def fork_copy(warm_pid: int, request_fds: list[int]) -> bool:
    """In a layer a request just reached: fork its copy. True in the copy (the warm process's child now,
    holding none of the request's descriptors); False in the layer, which goes on to become the worker (also
    when no copy could be made: the warm process then builds the next layer as before)."""
    try:
        between = os.fork()
    except OSError:
        return False
    if between != 0:
        return False  # the layer: the worker from now on
    try:
        if os.fork() != 0:
            os._exit(0)  # the go-between
        for fd in request_fds:
            os.close(fd)
        deadline = time.monotonic() + ADOPTED_WITHIN_S
        while os.getppid() != warm_pid:
            if time.monotonic() > deadline:
                os._exit(0)  # not adopted (no subreaper): the warm process sees its socket end, and builds anew
            time.sleep(0.0005)
        return True
    except BaseException:  # noqa: BLE001 - a copy that cannot become one ends here, never as a second worker
        os._exit(0)
