"""The warm process on this machine, no Docker: it forks workers that serve on the inherited socket, hands
over a pidfd for each, and reports their exits the way subprocess.Popen would; nothing blocks the caller."""

import json
import os
import queue
import select
import signal
import time
from pathlib import Path

import httpx
import pytest

import fresh_interpreter
from procfs import not_running
from repo import FASTAPI_0_115, REPO
from shapes import write
from waiting import wait_until
from unstuck import wire
from unstuck.reload.events import WarmChildExited, WarmExited, WarmForked, WarmLayer, WarmReady
from unstuck.reload.warm_process_client import WarmProcess
from unstuck.warm import orm_ahead

FAILURE = {"phase": "import", "exc_type": "SyntaxError", "message": "invalid syntax", "file": "app/main.py",
           "line": 3, "traceback": ""}


# Layer events that came while a test waited for something else: with a core to spare, the next app layer is
# built beside each reload (warm_process.LAYER_BESIDE_RELOAD), so its word may come before the worker's exit.
_early_layers: dict[int, list] = {}


def next_event(events, kind, timeout=30):
    while True:
        event = events.get(timeout=timeout)
        if isinstance(event, WarmLayer) and kind is not WarmLayer:
            _early_layers.setdefault(id(events), []).append(event)
            continue
        assert isinstance(event, kind), event
        return event


@pytest.fixture
def warm(listening, tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(REPO / "entrypoint"))
    monkeypatch.setenv("APP_DIR", str(tmp_path))
    monkeypatch.setenv("UNSTUCK_GRACE", "0.5")
    preload = tmp_path / "preload.txt"
    preload.write_text("json\nfastapi\n")
    events = queue.SimpleQueue()
    handle = WarmProcess(listening.fileno(), preload, frozenset({"json", "fastapi"}), events)
    ready = next_event(events, WarmReady)
    assert ready.message.modules >= 3  # uvicorn, unstuck.generation.worker and the two asked for
    handle.ready = True
    yield handle, events
    handle.close()
    handle.proc.wait(timeout=10)


def fork(handle, events, changes=None):
    read_fd, write_fd = os.pipe()
    request = handle.request_fork(write_fd, FAILURE, changes)  # returns at once: the reply is an event
    os.close(write_fd)
    forked = next_event(events, WarmForked)
    assert forked.request == request and forked.pid != handle.pid
    handle.forked()
    return forked, read_fd


def test_forked_worker_serves_and_is_signalled_through_its_pidfd(warm, listening):
    handle, events = warm
    forked, read_fd = fork(handle, events)
    assert forked.pidfd is not None  # Linux >= 5.3: signals can never reach a recycled pid
    with os.fdopen(read_fd) as reports:
        assert '"event": "started"' in reports.readline()  # it runs: the reload's "forked" phase
        assert '"event": "failed"' in reports.readline()  # the error responder accepts connections
        response = httpx.get(f"http://127.0.0.1:{listening.getsockname()[1]}/", timeout=10)
        assert response.status_code == 503 and "SyntaxError" in response.text
        signal.pidfd_send_signal(forked.pidfd, signal.SIGTERM)
        exited = next_event(events, WarmChildExited)
        assert (exited.pid, exited.code) == (forked.pid, -signal.SIGTERM)  # uvicorn re-raises the signal
    os.close(forked.pidfd)


def test_retired_warm_process_outlives_its_children_then_exits(warm):
    handle, events = warm
    forked, read_fd = fork(handle, events)
    os.close(read_fd)
    handle.retire()
    signal.pidfd_send_signal(forked.pidfd, signal.SIGKILL)
    os.close(forked.pidfd)
    # Had it exited at retire(), its child would have died with it unreported: the child's exit comes first.
    exited = next_event(events, WarmChildExited, timeout=10)
    assert (exited.pid, exited.code) == (forked.pid, -signal.SIGKILL)
    handle.child_exited()
    assert next_event(events, WarmExited, timeout=10).warm is handle


def test_a_stop_sent_the_moment_a_worker_is_forked_is_never_lost(warm):
    """A worker inherits the warm process's signal state: a SIGTERM sent before it has set up its own
    handling must still stop it (were SIGTERM ignored in the warm process, it would be discarded)."""
    handle, events = warm
    for _ in range(30):
        read_fd, write_fd = os.pipe()
        handle.request_fork(write_fd, FAILURE)
        os.close(write_fd)
        forked = next_event(events, WarmForked)
        signal.pidfd_send_signal(forked.pidfd, signal.SIGTERM)  # at once, as a superseding save would
        os.close(forked.pidfd)
        exited = next_event(events, WarmChildExited, timeout=10)  # a lost stop: no exit, and this times out
        assert exited.pid == forked.pid and exited.code == -signal.SIGTERM
        os.close(read_fd)



def layers_of(handle) -> list[int]:
    """The warm process's children that are app layers now (by their process name)."""
    pids = open(f"/proc/{handle.pid}/task/{handle.pid}/children").read().split()
    named = []
    for pid in pids:
        try:
            if open(f"/proc/{pid}/comm").read().strip() == "unstuck-layer":
                named.append(int(pid))
        except OSError:
            pass  # exited meanwhile
    return named


def spare_of(handle) -> int:
    """The warm process's spare: its one child that was never handed out. Looked for at once (it is forked
    the moment the warm process reports ready) and found while it is still warming up."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        pids = open(f"/proc/{handle.pid}/task/{handle.pid}/children").read().split()
        if pids:
            return int(pids[0])
        time.sleep(0.001)
    pytest.fail("the warm process forked no spare within 30 s", pytrace=False)


def test_a_spare_that_is_not_ready_never_holds_up_a_reload(warm, listening):
    # A spare still warming up (a save right after a start or a reload), here one that never will be
    # ready: the reload is forked fresh instead of waiting for it, and the stuck spare is ended.
    handle, events = warm
    stuck = spare_of(handle)
    os.kill(stuck, signal.SIGSTOP)
    forked, read_fd = fork(handle, events, [("modified", "/somewhere/main.py")])
    assert forked.pid != stuck
    with os.fdopen(read_fd) as reports:
        readable, _, _ = select.select([reports], [], [], 30)
        assert readable, "the forked worker did not start within 30 s"
        assert '"event": "started"' in reports.readline()
    response = httpx.get(f"http://127.0.0.1:{listening.getsockname()[1]}/", timeout=10)
    assert response.status_code == 503 and "SyntaxError" in response.text
    deadline = time.monotonic() + 10
    while os.path.exists(f"/proc/{stuck}") and time.monotonic() < deadline:  # killed, then reaped
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{stuck}")
    signal.pidfd_send_signal(forked.pidfd, signal.SIGTERM)
    os.close(forked.pidfd)


def sockets_of(pid: int, fd: int | None = None) -> set[str]:
    """The socket inodes process `pid` holds (or only its descriptor `fd`)."""
    fds = [str(fd)] if fd is not None else os.listdir(f"/proc/{pid}/fd")
    found = set()
    for name in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{name}")
        except OSError:
            continue
        if target.startswith("socket:"):
            found.add(target)
    return found


def test_the_first_generation_leaves_a_spare_still_warming_up_for_the_next_save(warm, listening):
    # The first save often comes the moment the first page is served: a spare must be there for it.
    handle, events = warm
    warming = spare_of(handle)
    os.kill(warming, signal.SIGSTOP)  # still warming up when the first generation is asked for
    try:
        forked, read_fd = fork(handle, events)  # the start's first generation: no saves
        assert forked.pid != warming  # forked fresh, not kept waiting...
        with os.fdopen(read_fd) as reports:
            assert '"event": "started"' in reports.readline()  # it runs as a worker now
        state = open(f"/proc/{warming}/stat").read().rsplit(")", 1)[1].split()[0]
        assert state == "T", f"the spare is {state}, not waiting stopped"  # ...and the spare not ended
        # The worker holds none of the warm process's sockets but the port: were it to hold the spare's,
        # the spare would not see its end when it is dropped, and would outlive it.
        shared = sockets_of(handle.pid) & sockets_of(forked.pid)
        assert shared == sockets_of(os.getpid(), listening.fileno()), shared
        signal.pidfd_send_signal(forked.pidfd, signal.SIGTERM)
        os.close(forked.pidfd)
    finally:
        os.kill(warming, signal.SIGCONT)


def serve_once(handle, events, listening, changes, said=None, before_stop=None):
    """Fork a worker for a reload caused by `changes`; its answer and pid; then stop it (`before_stop()` first, if
    given). `said`, a list, gets what the worker's own "started" said it was made from."""
    read_fd, write_fd = os.pipe()
    handle.request_fork(write_fd, None, changes)
    os.close(write_fd)
    forked = next_event(events, WarmForked)
    handle.forked()
    with os.fdopen(read_fd) as reports:
        for line in reports:
            report = wire.decode_report(line)
            if isinstance(report, wire.Started) and said is not None:
                said.append(report.source)
            if isinstance(report, (wire.Ready, wire.Failed)):
                break
        body = httpx.get(f"http://127.0.0.1:{listening.getsockname()[1]}/", timeout=10).json()
        if before_stop is not None:
            before_stop()
        signal.pidfd_send_signal(forked.pidfd, signal.SIGTERM)
        os.close(forked.pidfd)
        exited = next_event(events, WarmChildExited)
        assert exited.pid == forked.pid
        handle.child_exited()
        # The reload server knows a forked worker is gone when its report pipe ends: no other process (a
        # layer's copy) may hold the pipe.
        deadline = time.monotonic() + 10
        while select.select([read_fd], [], [], max(0.0, deadline - time.monotonic()))[0]:
            if not os.read(read_fd, 1 << 16):
                break  # its end
        else:
            pytest.fail("the report pipe is still open after its worker exited")
    return body, forked.pid


def next_layer(handle, events):
    handle.prepare_layer()  # as the reload server does once a reload is done
    early = _early_layers.pop(id(events), [])
    event = early[-1] if early else next_event(events, WarmLayer)
    assert event.message.ok, event.message
    return event.message


def layers_until_usable(handle, events) -> tuple[list[str], object]:
    """Ask for a layer and take what the warm process says until one is usable (at most 5 reports: a layer that
    keeps failing the same way must not hang the test): why each before it was not, and the usable one."""
    handle.prepare_layer()
    said = [_early_layers.pop(id(events), [])]
    while not (said[-1] and said[-1][-1].message.ok) and len(said) < 5:
        said.append([next_event(events, WarmLayer)])
    whys = [event.message.why for batch in said for event in batch if not event.message.ok]
    return whys, said[-1][-1].message


def view_served_by_layer(handle, events, listening, layer, view) -> dict:
    """Save `view` (its path) as 'view-3': the layer `layer` serves it (its pid, said as the app layer); the body."""
    Path(view).write_text("VALUE = 'view-3'\n")
    said = []
    body, pid = serve_once(handle, events, listening, [["modified", str(view)]], said)
    assert pid == layer.pid and said == ["app layer"]
    return body


def test_a_save_is_served_from_the_app_layer_when_it_holds_nothing_the_save_changed(listening, tmp_path, monkeypatch):
    """The app layer has imported the user's modules a save is unlikely to change (app_layer.py): a save of
    main.py is served by it, and a save of a module it holds is not (that would serve the old code)."""
    write(tmp_path, {"main.py": MAIN, "models.py": "VALUE = 'models-1'\n", "noise.py": "print('imported noise')\n"})
    main, models = str(tmp_path / "main.py"), str(tmp_path / "models.py")
    (tmp_path / "preload.txt").write_text("fastapi\n")
    # What the reload server lists once a generation reported the modules it uses.
    (tmp_path / "preload.txt.app").write_text(f"models\t{models}\nnoise\t{tmp_path / 'noise.py'}\nmain\t{main}\n")
    monkeypatch.setenv("PYTHONPATH", str(REPO / "entrypoint"))
    monkeypatch.setenv("APP_DIR", str(tmp_path))
    monkeypatch.setenv("APP_MODULE", "main:app")
    monkeypatch.setenv("UNSTUCK_GRACE", "0.5")
    # As the image runs: else main-2's .pyc, written by the worker that imports it, is read for main-3, a
    # save of the same size within the same second (.pyc files are checked against mtimes in seconds; seen
    # failing 6 runs in a row on a faster Python 3.13 machine).
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    events = queue.SimpleQueue()
    handle = WarmProcess(listening.fileno(), tmp_path / "preload.txt", frozenset({"fastapi"}), events)
    try:
        next_event(events, WarmReady)
        handle.ready = True
        # Nothing saved yet: the module that defines the app is left out, as the likeliest to be edited.
        layer = next_layer(handle, events)
        assert layer.files == 2  # models.py and noise.py
        (tmp_path / "main.py").write_text(MAIN.replace("main-1", "main-2"))
        said = []
        body, pid = serve_once(handle, events, listening, [["modified", main]], said)
        assert body == {"main": "main-2", "models": "models-1"} and pid == layer.pid
        # The worker says itself what it was made from, on the pipe its "ready" comes on: the status never
        # names a reload's source before it knows it (the warm process's word comes on another socket).
        assert said == ["app layer"]

        layer = next_layer(handle, events)  # main.py is hot now: the layer leaves it out
        (tmp_path / "main.py").write_text(MAIN.replace("main-1", "main-3"))
        body, pid = serve_once(handle, events, listening, [["modified", main]])
        assert body == {"main": "main-3", "models": "models-1"} and pid == layer.pid

        layer = next_layer(handle, events)
        (tmp_path / "models.py").write_text("VALUE = 'models-2'\n")  # held by the layer: never served from it
        said = []
        body, pid = serve_once(handle, events, listening, [["modified", models]], said)
        assert body == {"main": "main-3", "models": "models-2"} and pid != layer.pid
        assert said in (["spare"], ["fork"])
    finally:
        handle.close()
        handle.proc.wait(timeout=10)


MAIN = """\
from fastapi import FastAPI

import models
import noise

app = FastAPI()


@app.get("/")
def index():
    return {"main": "main-1", "models": models.VALUE}
"""


@pytest.mark.parametrize("slow", [True, False], ids=["slow-to-import", "quick-to-import"])
def test_a_layer_slow_to_import_leaves_its_copy_to_serve_the_next_save_and_a_quick_one_is_built_anew(
        listening, tmp_path, monkeypatch, slow):
    """On a large project a layer takes as long as a cold start to import: a person's next save used to come
    before the next one was ready (issue 18). Such a layer forks its copy before it becomes the worker
    (layer_successor.py): each save of main.py is served from a layer, what it holds is imported once. A layer
    quick to import is built anew instead (a worker sharing its pages with a copy pays for each page it writes).
    Either way every answer is what a fresh interpreter would serve for the files as saved."""
    from unstuck.warm.warm_process import COPY_LAYERS_SLOWER_THAN_S

    imports = tmp_path / "imports.log"
    pause = f"import time; time.sleep({COPY_LAYERS_SLOWER_THAN_S + 0.3})\n" if slow else ""
    models_py = f"{pause}open({str(imports)!r}, 'a').write('models imported\\n')\nVALUE = 'models-1'\n"
    write(tmp_path, {"main.py": MAIN, "models.py": models_py, "noise.py": ""})
    main, models = str(tmp_path / "main.py"), str(tmp_path / "models.py")
    (tmp_path / "preload.txt").write_text("fastapi\n")
    (tmp_path / "preload.txt.app").write_text(f"models\t{models}\nnoise\t{tmp_path / 'noise.py'}\nmain\t{main}\n")
    for name, value in {"PYTHONPATH": str(REPO / "entrypoint"), "APP_DIR": str(tmp_path), "APP_MODULE": "main:app",
                        "UNSTUCK_GRACE": "0.5", "PYTHONDONTWRITEBYTECODE": "1"}.items():
        monkeypatch.setenv(name, value)
    events = queue.SimpleQueue()
    handle = WarmProcess(listening.fileno(), tmp_path / "preload.txt", frozenset({"fastapi"}), events)
    served_by = []
    try:
        next_event(events, WarmReady)
        handle.ready = True
        for version in ("main-2", "main-3", "main-4"):
            layer = next_layer(handle, events)
            assert layer.files == 2
            (tmp_path / "main.py").write_text(MAIN.replace("main-1", version))
            said = []
            body, pid = serve_once(handle, events, listening, [["modified", main]], said)
            assert body == {"main": version, "models": "models-1"} and pid == layer.pid and said == ["app layer"]
            served_by.append(pid)
            if not slow:
                # Not built beside the reload (it would take a core from it): only when asked, after the answer.
                assert layers_of(handle) == [], "a quick layer was built beside the reload"
        assert len(set(served_by)) == 3  # three processes: each became a worker in turn
        if slow:
            assert imports.read_text() == "models imported\n"  # by the first layer only: the others are its copies
        else:
            assert imports.read_text().count("models imported") >= 3  # by each layer
    finally:
        handle.close()
        handle.proc.wait(timeout=10)


@pytest.mark.parametrize("ahead", [True, False], ids=["copy-ahead", "copy-when-asked"])
def test_a_slow_layers_copy_is_forked_before_a_save_comes_and_ends_with_it(listening, tmp_path, monkeypatch, ahead):
    """A worker made from a layer that shares its pages with the copy forked as the save came pays a fault and a
    copy for each page it writes while it imports (on mealie 0.03 s of each reload): the copy is forked as soon as
    the layer is ready (its twin, layer_successor.py), and is the process that serves the next save. With
    UNSTUCK_APP_LAYER_COPY_AHEAD=0 it is forked when the save comes. The first workers of a chain of copies record
    the pages they wrote, and each copy copies only those (as it takes its turn, or once they are recorded): the
    rest it shares with its own copy (half the memory). A layer dropped takes its waiting copy along."""
    from unstuck.warm.warm_process import COPY_LAYERS_SLOWER_THAN_S

    pause = f"import time; time.sleep({COPY_LAYERS_SLOWER_THAN_S + 0.3})\n"
    write(tmp_path, {"main.py": MAIN, "models.py": f"{pause}VALUE = 'models-1'\n", "noise.py": ""})
    main, models = str(tmp_path / "main.py"), str(tmp_path / "models.py")
    (tmp_path / "preload.txt").write_text("fastapi\n")
    (tmp_path / "preload.txt.app").write_text(f"models\t{models}\nnoise\t{tmp_path / 'noise.py'}\nmain\t{main}\n")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    record = run_dir / "layer-pages.json"
    for name, value in {"PYTHONPATH": str(REPO / "entrypoint"), "APP_DIR": str(tmp_path), "APP_MODULE": "main:app",
                        "UNSTUCK_GRACE": "0.5", "PYTHONDONTWRITEBYTECODE": "1", "UNSTUCK_RUN_DIR": str(run_dir),
                        "UNSTUCK_APP_LAYER_COPY_AHEAD": "1" if ahead else "0"}.items():
        monkeypatch.setenv(name, value)

    def recorded() -> None:  # the worker records what it wrote after its first answer (not before it is stopped)
        if ahead:
            wait_until("the chain's worker records the pages it wrote", lambda: (record.exists(), str(record)), 10)

    events = queue.SimpleQueue()
    handle = WarmProcess(listening.fileno(), tmp_path / "preload.txt", frozenset({"fastapi"}), events)
    try:
        next_event(events, WarmReady)
        handle.ready = True
        for version in ("main-2", "main-3"):
            layer = next_layer(handle, events)
            if version == "main-2":
                first = layer.pid
            # The layer said it is ready: a copy forked ahead is the warm process's by then (a layer the warm
            # process dropped, still importing, may take a moment to end).
            def copies_waiting() -> tuple[bool, str]:
                copies[:] = [pid for pid in layers_of(handle) if pid != layer.pid]
                return len(copies) == (1 if ahead else 0), f"the layer {layer.pid}'s copies waiting: {copies}"

            copies: list[int] = []
            wait_until("the layer's copy forked ahead, and no other", copies_waiting, 10)
            if ahead and version == "main-3":
                # It took its turn as the save before came, before that save's worker recorded the pages it wrote:
                # it copies them as it waits, once they are recorded.
                runs = json.loads(record.read_text())["runs"]
                recorded_kb = sum(end - start for start, end in runs) // 1024
                wait_until("the layer copies its chain's recorded pages", lambda: (
                    dirty(layer.pid)["Private_Dirty"] >= recorded_kb / 2,
                    f"{dirty(layer.pid)}, {recorded_kb} kB recorded"), 10)
            (tmp_path / "main.py").write_text(MAIN.replace("main-1", version))
            body, pid = serve_once(handle, events, listening, [["modified", main]], [], before_stop=recorded)
            assert body == {"main": version, "models": "models-1"} and pid == layer.pid
        layer = next_layer(handle, events)
        if ahead:
            assert layer.pid == copies[0]  # the copy forked before the save serves the next
            # This one took its turn after the chain's first worker recorded what it wrote: it copied only that.
            assert record.exists(), "no worker of the layer's chain recorded the pages it wrote"
            chain = json.loads(record.read_text())
            assert chain["chain"] == first and chain["workers"] >= 1 and chain["runs"], chain
            memory = dirty(layer.pid)
            assert memory["Shared_Dirty"] > memory["Private_Dirty"] / 2, memory  # all copied: Shared_Dirty about 1 MB
        else:
            assert not record.exists()
        waiting = layers_of(handle)
        # A save of a file the layer holds: it cannot serve it, and is dropped (the spare serves): its copy ends too.
        (tmp_path / "models.py").write_text(f"{pause}VALUE = 'models-2'\n")
        body, pid = serve_once(handle, events, listening, [["modified", models]])
        assert body == {"main": "main-3", "models": "models-2"} and pid not in waiting
        wait_until("the dropped layer and its copy end", lambda: (
            all(not_running(pid) for pid in waiting), f"live on: {[p for p in waiting if not not_running(p)]}"), 10)
    finally:
        handle.close()
        handle.proc.wait(timeout=10)


def dirty(pid: int) -> dict[str, int]:
    """A process's Shared_Dirty and Private_Dirty (kB)."""
    return {line.split(":")[0]: int(line.split()[1]) for line in open(f"/proc/{pid}/smaps_rollup")
            if line.split(":")[0] in ("Shared_Dirty", "Private_Dirty")}



@pytest.mark.parametrize("imports_it", [False, True])
def test_a_first_start_imports_pandas_ahead_only_if_the_projects_sources_import_it(listening, tmp_path, monkeypatch,
                                                                                   caplog, imports_it):
    import logging

    monkeypatch.setenv("PYTHONPATH", str(REPO / "entrypoint"))
    monkeypatch.setenv("APP_DIR", str(tmp_path))
    (tmp_path / "main.py").write_text(
        ("def report():\n    import pandas\n" if imports_it else "") +
        "import sys\n\nasync def app(scope, receive, send):\n    if scope['type'] != 'http':\n        return\n"
        "    body = b'true' if 'pandas' in sys.modules else b'false'  # JSON\n"
        "    await send({'type': 'http.response.start', 'status': 200, 'headers': []})\n"
        "    await send({'type': 'http.response.body', 'body': body})\n")
    monkeypatch.setenv("APP_MODULE", "main:app")
    caplog.set_level(logging.DEBUG, logger="unstuck")
    events = queue.SimpleQueue()
    # A first start: no preload file; pandas is one of the guesses (seeds.py), imported after "ready".
    handle = WarmProcess(listening.fileno(), tmp_path / "preload.txt", frozenset(), events, frozenset({"pandas"}))
    try:
        next_event(events, WarmReady)
        handle.ready = True
        said = "imported 1 more modules" if imports_it else "pandas not imported ahead"
        wait_until(f"the warm process says {said!r}", lambda: (said in caplog.text, caplog.text[-300:]), timeout=60)
        body, _ = serve_once(handle, events, listening, None)
        assert body is imports_it  # whether a worker forked now has pandas imported
    finally:
        handle.close()
        handle.proc.wait(timeout=10)


def build_layer_in_a_fork(tmp_path, monkeypatch, names):
    """What the app layer's process says after importing `names` of the project at tmp_path (a fork, as the
    warm process makes it: build_layer changes the directory and the process's descriptors)."""
    import json

    from unstuck import config
    from unstuck.warm.warm_process import build_layer

    monkeypatch.setenv("APP_DIR", str(tmp_path))
    monkeypatch.setenv("APP_MODULE", "main:app")
    settings = config.load(check_dirs=False)
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.write(write_fd, json.dumps(build_layer(names, settings)).encode())
        finally:
            os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd) as said:
        result = json.loads(said.read())
    os.waitpid(pid, 0)
    return result


def test_a_log_file_an_import_opens_for_appending_does_not_keep_the_app_layer_out(tmp_path, monkeypatch):
    # A worker forked from the layer appends to the same log as one that opened it itself: nothing differs.
    write(tmp_path, {"main.py": "app = None\n", "logsetup.py": (
        "import logging\nhandler = logging.FileHandler('app.log')\nlogging.getLogger('app').addHandler(handler)\n")})
    held = build_layer_in_a_fork(tmp_path, monkeypatch, ["logsetup"])
    assert isinstance(held, dict) and os.path.realpath(tmp_path / "logsetup.py") in held, held


@pytest.mark.parametrize("opens, named", [
    ("import socket\nconnection = socket.socket()\n", "a socket"),
    ("data = open('data.txt')\n", "data.txt"),  # read at an offset the worker would share
])
def test_any_other_descriptor_an_import_leaves_open_keeps_the_app_layer_out_and_is_named(tmp_path, monkeypatch,
                                                                                        opens, named):
    write(tmp_path, {"main.py": "app = None\n", "data.txt": "x\n", "opener.py": opens})
    why = build_layer_in_a_fork(tmp_path, monkeypatch, ["opener"])
    assert isinstance(why, str) and why.startswith("an import left ") and named in why, why


def warm_on(app_dir, preload_dir, monkeypatch, listening, pythonpath=()):
    (preload_dir / "preload.txt").write_text("fastapi\n")
    for name, value in {"PYTHONPATH": os.pathsep.join([str(REPO / "entrypoint"), *map(str, pythonpath)]),
                        "APP_DIR": str(app_dir), "APP_MODULE": "main:app", "UNSTUCK_GRACE": "0.5",
                        "PYTHONDONTWRITEBYTECODE": "1"}.items():
        monkeypatch.setenv(name, value)
    events = queue.SimpleQueue()
    handle = WarmProcess(listening.fileno(), preload_dir / "preload.txt", frozenset({"fastapi"}), events)
    next_event(events, WarmReady)
    handle.ready = True
    return handle, events


def write_list(preload_dir, listed) -> None:
    """The module list the reload server would have written after a run (app_layer.list_line's columns)."""
    (preload_dir / "preload.txt.app").write_text("".join("\t".join(map(str, entry)) + "\n" for entry in listed))


def view_saved_once(handle, events, listening, app, view="view.py") -> None:
    """Save the view (`view`, under `app`) once (served from the spare: the first layer held it): from then on it is
    hot, and the next layer stops before it."""
    next_layer(handle, events)
    (app / view).write_text("VALUE = 'view-2'\n")
    serve_once(handle, events, listening, [["modified", str(app / view)]])


ROUTES_MAIN = """\
from fastapi import FastAPI

import routes

app = FastAPI()
app.include_router(routes.router)
"""

# The importer of the view (as a URLconf is): what it imports before the view (a framework's admin), and after it
# (as a framework would import an app's hooks: by name).
ROUTES = """\
import importlib

from fastapi import APIRouter

import admin_site
import view

after = importlib.import_module("after")

router = APIRouter()


@router.get("/")
def index():
    return {"view": view.VALUE, "after": after.TEXT, "admin": admin_site.NAME}
"""

# A module that says which process imported it (the log's path, its NAME).
IMPORT_LOGGED = """\
open({log!r}, "a").write(open("/proc/self/comm").read().strip() + "\\n")
NAME = {name!r}
"""


def test_a_layer_loads_the_app_up_to_the_saved_module_and_its_worker_imports_only_from_there(
        listening, tmp_path, monkeypatch):
    """A saved view's importer (a URLconf) left the layer with all it imports: on a Wagtail site, the whole admin
    imported again at every save (issue 18). The layer now loads the app as a worker does and stops at the saved
    module (paused_load.py): what the importer imported before the view is the layer's, the view and what comes
    after it are imported by the worker, fresh; a save of a module imported after the view is served from the
    layer too, with its new text."""
    app, site = tmp_path / "app", tmp_path / "site"
    log = tmp_path / "admin-imported-by.log"
    write(app, {"main.py": ROUTES_MAIN, "routes.py": ROUTES, "view.py": "VALUE = 'view-1'\n",
                "after.py": "TEXT = 'after-1'\n"})
    write(site, {"admin_site.py": IMPORT_LOGGED.format(log=str(log), name="admin")})
    listed = [("main", app / "main.py", "", 0), ("routes", app / "routes.py", "main", 0),
              ("view", app / "view.py", "routes", 0), ("after", app / "after.py", "routes", 1)]
    write_list(tmp_path, listed)
    handle, events = warm_on(app, tmp_path, monkeypatch, listening, [site])
    view, after = str(app / "view.py"), str(app / "after.py")
    try:
        next_layer(handle, events)
        (app / "view.py").write_text("VALUE = 'view-2'\n")
        serve_once(handle, events, listening, [["modified", view]])  # the layer held view.py: from the spare
        log.write_text("")

        layer = next_layer(handle, events)  # view.py is hot: the layer stops before it
        assert layer.stops_at == "view"
        body = view_served_by_layer(handle, events, listening, layer, view)
        assert body == {"view": "view-3", "after": "after-1", "admin": "admin"}
        assert log.read_text().split() == ["unstuck-layer"], "the worker imported again what came before the view"

        layer = next_layer(handle, events)
        (app / "after.py").write_text("TEXT = 'after-2'\n")  # imported after the stop: never the layer's
        body, pid = serve_once(handle, events, listening, [["modified", after]])
        assert body == {"view": "view-3", "after": "after-2", "admin": "admin"}
        assert pid == layer.pid
    finally:
        handle.close()
        handle.proc.wait(timeout=10)


def test_a_py_file_the_app_reads_and_executes_while_the_layer_loads_it_is_held_by_the_layer(
        listening, tmp_path, monkeypatch):
    """An app may read a .py file without importing it (Flask's `config.from_pyfile`, a settings file run with
    exec), here as well as importing it after the saved module. The layer loads the app up to the saved module; if
    that load read such a file, the layer holds it, and a save of it is served fresh, never with the values the
    layer read before."""
    app = tmp_path / "app"
    main = ("import os\nCONFIG = {}\nexec(open(os.path.join(os.path.dirname(__file__), 'config.py')).read(), CONFIG)\n"
            + ROUTES_MAIN.replace("import routes\n", "import routes\nroutes.CONFIG = CONFIG\n"))
    routes = ("import view\nfrom fastapi import APIRouter\nrouter = APIRouter()\nCONFIG = {}\n\n\n"
              "@router.get('/')\ndef index():\n    return {'view': view.VALUE, 'config': CONFIG['NAME'], "
              "'imported': view.config.NAME}\n")
    write(app, {"main.py": main, "routes.py": routes, "view.py": "import config\nVALUE = 'view-1'\n",
                "config.py": "NAME = 'config-1'\n"})
    # config is imported after view.py (so the plan leaves it to the load, which stops before view.py)
    listed = [("main", app / "main.py", "", 0), ("routes", app / "routes.py", "main", 0),
              ("view", app / "view.py", "routes", 0), ("config", app / "config.py", "view", 1)]
    write_list(tmp_path, listed)
    handle, events = warm_on(app, tmp_path, monkeypatch, listening)
    view, config = str(app / "view.py"), str(app / "config.py")
    try:
        next_layer(handle, events)
        (app / "view.py").write_text("import config\nVALUE = 'view-2'\n")
        serve_once(handle, events, listening, [["modified", view]])
        layer = next_layer(handle, events)  # stops before view.py, with config.py read (and not imported)
        (app / "config.py").write_text("NAME = 'config-2'\n")
        body, pid = serve_once(handle, events, listening, [["modified", config]])
        assert body == {"view": "view-2", "config": "config-2", "imported": "config-2"}
        assert pid != layer.pid
    finally:
        handle.close()
        handle.proc.wait(timeout=10)


def test_a_layer_whose_load_of_the_app_cannot_stand_in_for_a_worker_holds_its_planned_modules_only(
        listening, tmp_path, monkeypatch):
    """Loading the app ahead is only a way to be faster: when that load cannot be forked from (the app starts a
    thread while it is imported), the layer says so and the next one holds the planned modules only, as before;
    the save is still served from a layer, with its new text."""
    app = tmp_path / "app"
    main = ("import threading, time\nthreading.Thread(target=time.sleep, args=(60,), daemon=True).start()\n"
            + ROUTES_MAIN)
    routes = ("import view\nfrom fastapi import APIRouter\nrouter = APIRouter()\n\n\n"
              "@router.get('/')\ndef index():\n    return {'view': view.VALUE}\n")
    write(app, {"main.py": main, "routes.py": routes, "view.py": "VALUE = 'view-1'\n", "models.py": "X = 1\n"})
    listed = [("main", app / "main.py", "", 0), ("models", app / "models.py", "main", 0),
              ("routes", app / "routes.py", "main", 0), ("view", app / "view.py", "routes", 0)]
    write_list(tmp_path, listed)
    handle, events = warm_on(app, tmp_path, monkeypatch, listening)
    view = str(app / "view.py")
    try:
        view_saved_once(handle, events, listening, app)
        whys, layer = layers_until_usable(handle, events)
        assert whys == ["loading the app ahead: an import started a thread"], whys
        (app / "view.py").write_text("VALUE = 'view-3'\n")
        body, pid = serve_once(handle, events, listening, [["modified", view]])
        assert body == {"view": "view-3"} and pid == layer.pid
    finally:
        handle.close()
        handle.proc.wait(timeout=10)


def test_a_module_the_layers_load_looked_for_and_did_not_find_is_imported_once_it_is_created(
        listening, tmp_path, monkeypatch):
    """`try: import local_settings` with no such file (there on an earlier run, deleted since) while the layer loaded
    the app: creating that file again must take effect at once, as in a fresh interpreter, not leave the layer's
    worker going on without it."""
    app = tmp_path / "app"
    main = ("try:\n    import local_settings\n    NAME = local_settings.NAME\n"
            "except ImportError:\n    NAME = 'default'\n"
            + ROUTES_MAIN.replace("import routes\n", "import routes\nroutes.CONFIG = NAME\n"))
    routes = ("import view\nfrom fastapi import APIRouter\nrouter = APIRouter()\nCONFIG = ''\n\n\n"
              "@router.get('/')\ndef index():\n    return {'view': view.VALUE, 'name': CONFIG}\n")
    write(app, {"main.py": main, "routes.py": routes, "view.py": "VALUE = 'view-1'\n"})
    listed = [("main", app / "main.py"), ("local_settings", app / "local_settings.py"), ("routes", app / "routes.py"),
              ("view", app / "view.py")]
    (tmp_path / "preload.txt.app").write_text("".join(f"{name}\t{path}\tmain\t0\n" for name, path in listed))
    handle, events = warm_on(app, tmp_path, monkeypatch, listening)
    local = str(app / "local_settings.py")
    try:
        view_saved_once(handle, events, listening, app)
        next_layer(handle, events)  # stops before view.py, having looked for local_settings
        (app / "local_settings.py").write_text("NAME = 'local'\n")
        body, _ = serve_once(handle, events, listening, [["added", local]])
        assert body == {"view": "view-2", "name": "local"}
    finally:
        handle.close()
        handle.proc.wait(timeout=10)


def test_a_plugin_file_added_to_a_folder_the_app_scanned_while_the_layer_loaded_it_is_found(
        listening, tmp_path, monkeypatch):
    """An app that imports every module of a folder it lists (plugins) found them while the layer loaded it: a
    new file there must be found at once, as by a fresh interpreter, not missed by the layer's worker."""
    app = tmp_path / "app"
    main = ("import importlib, os\nPLUGINS = sorted(importlib.import_module('plugins.' + f[:-3]).NAME for f in "
            "os.listdir(os.path.join(os.path.dirname(__file__), 'plugins')) if f.endswith('.py') and f[0] != '_')\n"
            + ROUTES_MAIN.replace("import routes\n", "import routes\nroutes.CONFIG = PLUGINS\n"))
    routes = ("import view\nfrom fastapi import APIRouter\nrouter = APIRouter()\nCONFIG = []\n\n\n"
              "@router.get('/')\ndef index():\n    return {'view': view.VALUE, 'plugins': CONFIG}\n")
    write(app, {"main.py": main, "routes.py": routes, "view.py": "VALUE = 'view-1'\n", "plugins/__init__.py": "",
                "plugins/first.py": "NAME = 'first'\n"})
    listed = [("main", app / "main.py"), ("plugins", app / "plugins/__init__.py"),
              ("plugins.first", app / "plugins/first.py"), ("routes", app / "routes.py"), ("view", app / "view.py")]
    (tmp_path / "preload.txt.app").write_text("".join(f"{name}\t{path}\tmain\t0\n" for name, path in listed))
    handle, events = warm_on(app, tmp_path, monkeypatch, listening)
    second = str(app / "plugins/second.py")
    try:
        view_saved_once(handle, events, listening, app)
        next_layer(handle, events)  # stops before view.py, the plugins found
        (app / "plugins/second.py").write_text("NAME = 'second'\n")
        body, _ = serve_once(handle, events, listening, [["added", second]])
        assert body == {"view": "view-2", "plugins": ["first", "second"]}
    finally:
        handle.close()
        handle.proc.wait(timeout=10)


SHOP_MAIN = """\
from fastapi import FastAPI

import shop
import routes

app = FastAPI()
app.include_router(routes.router)
app.include_router(shop.router, prefix="/copy")
"""

SHOP = """\
from fastapi import APIRouter, Query

router = APIRouter()


@router.get("/item")
def item(q: int = Query(1, le=10)):
    return {"q": q}
"""

def shop_listed(app) -> list:
    """The module list of the app made of SHOP_MAIN, SHOP (or TWINS), SHOP_ROUTES and view.py."""
    return [("main", app / "main.py", "", 0), ("shop", app / "shop.py", "main", 0),
            ("routes", app / "routes.py", "main", 0), ("view", app / "view.py", "routes", 0)]


SHOP_ROUTES = """\
import sys

from fastapi import APIRouter

import view

router = APIRouter()


@router.get("/")
def index():
    memo = getattr(sys.modules.get("unstuck.warm.field_memo"), "installed", None)
    analyses = getattr(sys.modules.get("unstuck.warm.dependant_memo"), "installed", None)
    return {"view": view.VALUE, "fields_from_the_layer": memo and memo.hits,
            "analyses_from_the_layer": analyses and analyses.hits}
"""


def fastapi_of(which: str) -> list:
    """The PYTHONPATH entries for a test's FastAPI: the test venv's own ("venv"), or 0.115 ("0.115", as mealie pins
    it: the form whose route analyses dependant_memo.py keeps), installed apart by `make`."""
    if which == "venv":
        return []
    assert (FASTAPI_0_115 / "fastapi").is_dir(), f"run `make test-unit`: it installs FastAPI 0.115 in {FASTAPI_0_115}"
    return [FASTAPI_0_115]


# What a worker takes from what the layer (or its own import) built: FastAPI's fields (field_memo.py; mealie's leaf
# save spent 2 of its 2.5 s building them again in the worker) on the venv's FastAPI; and on FastAPI 0.115, the
# routes' analyses (dependant_memo.py; after the fields, two thirds of what was left of mealie's save).
TAKEN = [("venv", "fields_from_the_layer"), ("0.115", "analyses_from_the_layer")]


@pytest.mark.parametrize("fastapi, taken", TAKEN)
def test_a_worker_resumed_from_the_layer_takes_the_fastapi_routes_the_layer_built(
        fastapi, taken, listening, tmp_path, monkeypatch):
    """The FastAPI routes that include_router copies after the saved module are built again in the worker (issue
    18): the layer keeps what it built for each route by what it is built from, and the worker's copies of those
    routes take it. (That such an app serves what a fresh interpreter does: tests/unit/test_field_memo.py,
    tests/unit/test_dependant_memo.py.)"""
    app = tmp_path / "app"
    write(app, {"main.py": SHOP_MAIN, "shop.py": SHOP, "routes.py": SHOP_ROUTES, "view.py": "VALUE = 'view-1'\n"})
    write_list(tmp_path, shop_listed(app))
    handle, events = warm_on(app, tmp_path, monkeypatch, listening, pythonpath=fastapi_of(fastapi))
    try:
        view_saved_once(handle, events, listening, app)
        layer = next_layer(handle, events)
        assert layer.stops_at == "view"
        body = view_served_by_layer(handle, events, listening, layer, app / "view.py")
        # /copy/item: built by the layer for shop's own route, taken by the worker's copy of it.
        assert body["view"] == "view-3" and body[taken] >= 1, body
    finally:
        handle.close()
        handle.proc.wait(timeout=10)


PACKAGE_MAIN = """\
from fastapi import FastAPI

from routes import router

app = FastAPI()
app.include_router(router)
"""

# mealie's shape: the package's __init__ imports every router, the saved view among them; each router imports the
# package (its parent), so none of them can be imported ahead of the package's __init__.
PACKAGE_INIT = """\
from fastapi import APIRouter

from . import admin, view, shop

router = APIRouter()


@router.get("/")
def index():
    return {"view": view.VALUE, "shop": shop.NAME, "admin": admin.NAME}
"""


def package_listed(app) -> list:
    """The module list of the app made of PACKAGE_MAIN and the routes package."""
    return [("main", app / "main.py", "", 0), ("routes", app / "routes/__init__.py", "main", 0)] + [
        (f"routes.{name}", app / f"routes/{name}.py", "routes", 0) for name in ("admin", "view", "shop")]


def test_a_router_beside_the_saved_one_in_its_package_is_imported_by_the_layer_at_the_stop(
        listening, tmp_path, monkeypatch):
    """In mealie every router of `mealie.routes` imports that package, whose __init__ imports the saved view: all of
    them were imported by the worker, after the stop, at every save (issue 18). Those whose imports do not lead to
    the saved module are now imported by the layer once its load stops inside the view's import, when their
    package is running (app_layer.at_stop): the worker goes on with the view and the rest of the package's
    __init__. A save of such a router is then served with its new text."""
    app = tmp_path / "app"
    log = tmp_path / "shop-imported-by.log"
    write(app, {"main.py": PACKAGE_MAIN, "routes/__init__.py": PACKAGE_INIT, "routes/admin.py": "NAME = 'admin'\n",
                "routes/view.py": "VALUE = 'view-1'\n",
                "routes/shop.py": IMPORT_LOGGED.format(log=str(log), name="shop-1")})
    write_list(tmp_path, package_listed(app))
    handle, events = warm_on(app, tmp_path, monkeypatch, listening)
    view, shop = str(app / "routes/view.py"), str(app / "routes/shop.py")
    try:
        view_saved_once(handle, events, listening, app, "routes/view.py")
        log.write_text("")

        layer = next_layer(handle, events)
        assert layer.stops_at == "routes.view"
        body = view_served_by_layer(handle, events, listening, layer, view)
        assert body == {"view": "view-3", "shop": "shop-1", "admin": "admin"}
        assert log.read_text().split() == ["unstuck-layer"], "the worker imported the router beside the view"

        next_layer(handle, events)
        (app / "routes/shop.py").write_text(IMPORT_LOGGED.format(log=str(log), name="shop-2"))
        body, _ = serve_once(handle, events, listening, [["modified", shop]])
        assert body == {"view": "view-3", "shop": "shop-2", "admin": "admin"}
    finally:
        handle.close()
        handle.proc.wait(timeout=10)


def test_a_layer_whose_import_at_the_stop_fails_is_not_used_and_the_next_one_stops_without_it(
        listening, tmp_path, monkeypatch):
    """A router that needs the view imported before it (as a fresh process always has it) fails when the layer
    imports it at the stop: that layer is not used, it says why, and the next one stops at the view without
    importing anything there (WarmLoop.no_at_stop); the save is served from it as a fresh interpreter serves it."""
    app = tmp_path / "app"
    shop_py = "import sys\n\nassert 'routes.view' in sys.modules, 'the view first'\nNAME = 'shop-1'\n"
    write(app, {"main.py": PACKAGE_MAIN, "routes/__init__.py": PACKAGE_INIT, "routes/admin.py": "NAME = 'admin'\n",
                "routes/view.py": "VALUE = 'view-1'\n", "routes/shop.py": shop_py})
    write_list(tmp_path, package_listed(app))
    handle, events = warm_on(app, tmp_path, monkeypatch, listening)
    view = str(app / "routes/view.py")
    try:
        view_saved_once(handle, events, listening, app, "routes/view.py")
        whys, layer = layers_until_usable(handle, events)
        assert whys == ["loading the app ahead: importing routes.shop at the stop fails (AssertionError)"], whys
        assert layer.stops_at == "routes.view"
        body = view_served_by_layer(handle, events, listening, layer, view)
        assert body == {"view": "view-3", "shop": "shop-1", "admin": "admin"}
    finally:
        handle.close()
        handle.proc.wait(timeout=10)


# Two endpoints with the same query parameter (as `skip: int = 0` on every list route): FastAPI builds the field of
# each (and, before 0.119, again for each copy include_router makes).
TWINS = SHOP + """

@router.get("/twin")
def twin(q: int = Query(1, le=10)):
    return {"q": q}
"""


@pytest.mark.parametrize("fastapi, taken", TAKEN)
def test_a_worker_forked_from_the_spare_takes_the_fastapi_routes_its_own_import_built_already(
        fastapi, taken, listening, tmp_path, monkeypatch):
    """A save the app layer cannot serve (it held the saved file) is served from the spare, which imports the whole
    app: on mealie 4.6 s, most of it FastAPI building again and again the same fields and analyses (each route copy
    that include_router makes). Every worker the warm process forks keeps them by what they are built from: a
    route built like one before it takes that one's."""
    app = tmp_path / "app"
    write(app, {"main.py": SHOP_MAIN, "shop.py": TWINS, "routes.py": SHOP_ROUTES, "view.py": "VALUE = 'view-1'\n"})
    write_list(tmp_path, shop_listed(app))
    handle, events = warm_on(app, tmp_path, monkeypatch, listening, pythonpath=fastapi_of(fastapi))
    try:
        next_layer(handle, events)  # it holds view.py (before any save, the entry module is the one left out)
        (app / "view.py").write_text("VALUE = 'view-2'\n")
        said = []
        body, _ = serve_once(handle, events, listening, [["modified", str(app / "view.py")]], said)
        assert said in (["spare"], ["fork"])
        # /twin's query field: built like /item's a moment before, in the same import; /copy/item: analysed as
        # shop's own /item was.
        assert body["view"] == "view-2" and body[taken] >= 1, body
    finally:
        handle.close()
        handle.proc.wait(timeout=10)


# -- SQLAlchemy's mappers configured in the layer (orm_ahead.py) ---------------------------------------------------

LIBRARY = """\
from sqlalchemy import ForeignKey
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class Author(Base):
    __tablename__ = "author"
    id: Mapped[int] = mapped_column(primary_key=True)


class Book(Base):
    __tablename__ = "book"
    id: Mapped[int] = mapped_column(primary_key=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("author.id"))
    author: Mapped[Author] = relationship(backref="books")
"""

# A class of the same registry, mapped in another module (imported after `models`, before the view).
REVIEWS = """\
from sqlalchemy import ForeignKey
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models import Base, Book


class Review(Base):
    __tablename__ = "review"
    id: Mapped[int] = mapped_column(primary_key=True)
    book_id: Mapped[int] = mapped_column(ForeignKey("book.id"))
    book: Mapped[Book] = relationship(backref="reviews")


NAME = {name!r}
"""

LIBRARY_MAIN = """\
import sys

from fastapi import FastAPI

import models
import reviews
import view

app = FastAPI()


@app.get("/")
def index():
    # Reading a mapper's relationships configures them all, as the app's first query would.
    relationships = {m.class_.__name__: sorted(m.relationships.keys()) for m in models.Base.registry.mappers}
    ahead = getattr(sys.modules.get("unstuck.warm.orm_ahead"), "configured", None)
    return {"view": view.VALUE, "reviews": reviews.NAME, "relationships": relationships,
            "configured_by_the_layer": ahead is not None}
"""


def library(app, models: str = LIBRARY) -> list:
    """The app of LIBRARY_MAIN written under `app`; its module list."""
    write(app, {"main.py": LIBRARY_MAIN, "models.py": models, "reviews.py": REVIEWS.format(name="reviews-1"),
                "view.py": "VALUE = 'view-1'\n"})
    return [("main", app / "main.py", "", 0), ("models", app / "models.py", "main", 0),
            ("reviews", app / "reviews.py", "main", 0), ("view", app / "view.py", "main", 0)]


def fresh_library_answer(app) -> dict:
    """What a fresh interpreter importing the same tree answers (no unstuck in it: nothing configured ahead)."""
    return fresh_interpreter.on_host("import json, sys; sys.path.insert(0, sys.argv[1]); import main; "
                                     "print(json.dumps(main.index()))", str(app))


def reviews_saved_once(handle, events, listening, app) -> None:
    """reviews.py saved once (from the spare: the first layer held it): the next layer stops before it."""
    next_layer(handle, events)
    (app / "reviews.py").write_text(REVIEWS.format(name="reviews-2"))
    serve_once(handle, events, listening, [["modified", str(app / "reviews.py")]])


def reports_of_one_fork(handle, events, changes) -> list:
    """Fork a worker for a reload caused by `changes` and read its reports until it is ready or failed; it is
    stopped (if it has not exited) and reaped."""
    read_fd, write_fd = os.pipe()
    handle.request_fork(write_fd, None, changes)
    os.close(write_fd)
    forked = next_event(events, WarmForked)
    handle.forked()
    reports = []
    with os.fdopen(read_fd) as lines:
        for line in lines:
            reports.append(wire.decode_report(line))
            if isinstance(reports[-1], (wire.Ready, wire.Failed)):
                break
    try:
        signal.pidfd_send_signal(forked.pidfd, signal.SIGTERM)
    except ProcessLookupError:
        pass
    os.close(forked.pidfd)
    assert next_event(events, WarmChildExited).pid == forked.pid
    handle.child_exited()
    return reports


def test_a_worker_resumed_from_the_layer_starts_with_the_mappers_it_configured_as_a_fresh_interpreter_would(
        listening, tmp_path, monkeypatch):
    """SQLAlchemy configures the mappers at the app's first query: in every worker resumed from the layer, again
    (mealie: 0.13 s of a 0.48 s view edit). The layer configures them at its stop when every class is mapped by then
    and no configure listener would run early; the worker starts with them configured, and answers as a fresh
    interpreter does (the backrefs included). Told so (a worker could not prove them), the layers stop doing it."""
    app = tmp_path / "app"
    write_list(tmp_path, library(app))
    handle, events = warm_on(app, tmp_path, monkeypatch, listening)
    view = app / "view.py"
    try:
        view_saved_once(handle, events, listening, app)
        layer = next_layer(handle, events)
        assert layer.stops_at == "view"
        body = view_served_by_layer(handle, events, listening, layer, view)
        assert body["configured_by_the_layer"] is True, body
        assert body == {**fresh_library_answer(app), "configured_by_the_layer": True}
        assert body["relationships"] == {"Author": ["books"], "Book": ["author", "reviews"], "Review": ["book"]}

        handle.send(wire.NoOrmAhead())
        layer = next_layer(handle, events)
        body = view_served_by_layer(handle, events, listening, layer, view)
        assert body == {**fresh_library_answer(app), "configured_by_the_layer": False}
    finally:
        handle.close()
        handle.proc.wait(timeout=10)


def test_a_class_mapped_after_the_layer_configured_the_others_holds_the_worker_for_a_fresh_interpreter(
        listening, tmp_path, monkeypatch):
    """A saved module that maps a class is imported by the worker, after the layer configured the classes mapped
    before it: SQLAlchemy would configure the new one on its own, which a fresh interpreter never does (it configures
    them all at once). That worker serves nothing and says so (held, naming the mappers configured ahead): the reload
    server serves the same code from a fresh interpreter, and narrows that fast path (tests/unit)."""
    app = tmp_path / "app"
    write_list(tmp_path, library(app))
    handle, events = warm_on(app, tmp_path, monkeypatch, listening)
    reviews = app / "reviews.py"
    try:
        reviews_saved_once(handle, events, listening, app)
        layer = next_layer(handle, events)
        assert layer.stops_at == "reviews"
        reviews.write_text(REVIEWS.format(name="reviews-3"))
        reports = reports_of_one_fork(handle, events, [["modified", str(reviews)]])
        started, failed = reports[0], reports[-1]
        assert isinstance(started, wire.Started) and started.source == "app layer" and started.pid == layer.pid
        assert isinstance(failed, wire.Failed) and failed.held and failed.source == orm_ahead.SOURCE, failed
        assert failed.failure["exc_type"] == "MappersConfiguredAhead"
        assert "mapped 1 more class" in failed.failure["message"]
    finally:
        handle.close()
        handle.proc.wait(timeout=10)


def test_a_layer_whose_mappers_fail_to_configure_at_the_stop_is_not_used_and_the_next_one_leaves_them(
        listening, tmp_path, monkeypatch):
    """A relationship to a class mapped after the stop (by name, as most apps write them) cannot be configured at
    the stop, and a failed configuration stays failed: that layer is not used, it says why, and the next one for the
    same plan stops without configuring; its worker answers as a fresh interpreter does."""
    app = tmp_path / "app"
    by_name = LIBRARY.replace('    author: Mapped[Author] = relationship(backref="books")\n',
                              '    author: Mapped[Author] = relationship(backref="books")\n'
                              '    liked: Mapped[list["Review"]] = relationship(viewonly=True)\n')
    write_list(tmp_path, library(app, by_name))
    handle, events = warm_on(app, tmp_path, monkeypatch, listening)
    try:
        reviews_saved_once(handle, events, listening, app)
        whys, layer = layers_until_usable(handle, events)
        assert whys == ["loading the app ahead: configuring SQLAlchemy's mappers at the stop fails "
                        "(InvalidRequestError)"], whys
        assert layer.stops_at == "reviews"
        (app / "reviews.py").write_text(REVIEWS.format(name="reviews-3"))
        said = []
        body, pid = serve_once(handle, events, listening, [["modified", str(app / "reviews.py")]], said)
        assert pid == layer.pid and said == ["app layer"]
        assert body == {**fresh_library_answer(app), "configured_by_the_layer": False}
        assert body["reviews"] == "reviews-3" and body["relationships"]["Book"] == ["author", "liked", "reviews"]
    finally:
        handle.close()
        handle.proc.wait(timeout=10)


# A layer of a chain does ahead what its chain's first worker did (done_ahead.py): mealie's shape, a package's
# router resumed at each save includes a router the layer holds whole into a router with a prefix, and the app
# loads a file by path as it starts (alembic's revision scripts).
AHEAD_MAIN = """\
from fastapi import FastAPI

import api

app = FastAPI()
app.include_router(api.router)


@app.get("/")
def index():
    return {"view": api.view.VALUE, "plugin": api.plugin.TEXT, "routes_taken": api.routes_taken,
            "plugin_taken": api.plugin_taken}
"""

AHEAD_SHOP = """\
import time

from fastapi import APIRouter, Body, Query
from pydantic import BaseModel

time.sleep({pause})  # a layer slow to import copies itself (layer_successor.py)

router = APIRouter(prefix="/shop", tags=["shop"])


class Item(BaseModel):
    name: str
    price: float = 1.0


@router.get("/items/{{item_id}}", response_model=Item)
def read(item_id: int, q: int = Query(1, le=10)):
    return Item(name=str(item_id), price=q)


@router.post("/items", status_code=201)
def create(item: Item, note: str = Body(...)):
    return {{"item": item, "note": note}}
"""

AHEAD_API = """\
import importlib.util
import sys

from fastapi import APIRouter

import shop
import view



def hits(memo):  # what unstuck's memo gave so far (none in a fresh interpreter)
    return getattr(getattr(sys.modules.get("unstuck.warm." + memo), "installed", None), "hits", 0)


before = hits("route_memo")
router = APIRouter(prefix="/api")
router.include_router(shop.router, responses={{404: {{"description": "none"}}}})
routes_taken = hits("route_memo") - before

spec = importlib.util.spec_from_file_location("plugin", {plugin!r})
plugin = importlib.util.module_from_spec(spec)
before = hits("code_memo")
spec.loader.exec_module(plugin)
plugin_taken = hits("code_memo") - before
"""

# What a fresh interpreter serves for the same files (on the same FastAPI): the answers the test compares.
AHEAD_FRESH = """\
import json, sys
sys.path[:0] = [sys.argv[1], sys.argv[2], sys.argv[3]]
from fastapi.testclient import TestClient
import main
client = TestClient(main.app)
print(json.dumps({"openapi": client.get("/openapi.json").json(), "read": client.get("/api/shop/items/3?q=2").json(),
                  "create": [client.post("/api/shop/items", json={"item": {"name": "a"}, "note": "n"}).status_code,
                             client.post("/api/shop/items", json={"item": {"name": "a"}, "note": "n"}).json()]}))
"""


def read_chars(pid: int) -> int:
    """What a process read so far (/proc/PID/io's rchar: a fork starts at 0)."""
    return int(next(line.split()[1] for line in open(f"/proc/{pid}/io") if line.startswith("rchar:")))


def test_a_chains_next_layer_includes_ahead_and_compiles_ahead_what_its_first_worker_did(
        listening, tmp_path, monkeypatch):
    """A worker resumed from a layer of a chain builds again, at every save, the routes of a router the layer holds
    that the resumed module includes with a prefix (mealie: 243 routes under /api), and compiles the files its app
    loads by path (mealie: alembic's 37 revisions): 0.1 s of each reload. The chain's first worker writes them down
    after its first answer, and the next layer, while it waits, includes that router into a router of the same
    settings and compiles those files (done_ahead.py): its worker takes the routes (route_memo.py) and the compiled
    plugin. A twin does that work while it waits for its turn, so that the layers forked from it hold it from the
    start. Every answer is a fresh interpreter's, including the routes built ahead (whose handlers the worker
    makes)."""
    from unstuck.warm.warm_process import COPY_LAYERS_SLOWER_THAN_S

    app, run_dir = tmp_path / "app", tmp_path / "run"
    run_dir.mkdir()
    plugin = app / "plugins" / "plugin.py"
    # Read last by the layer doing its work ahead, and large: its read shows that work done (read_chars).
    padding = "#" * 1000 + "\n"
    write(app, {"main.py": AHEAD_MAIN, "shop.py": AHEAD_SHOP.format(pause=COPY_LAYERS_SLOWER_THAN_S + 0.3),
                "api.py": AHEAD_API.format(plugin=str(plugin)), "view.py": "VALUE = 'view-1'\n",
                "plugins/plugin.py": "TEXT = 'plugin-1'\n" + padding * 4000})
    write_list(tmp_path, [("main", app / "main.py", "", 0), ("api", app / "api.py", "main", 0),
                          ("shop", app / "shop.py", "api", 0), ("view", app / "view.py", "api", 0)])
    monkeypatch.setenv("UNSTUCK_RUN_DIR", str(run_dir))
    handle, events = warm_on(app, tmp_path, monkeypatch, listening, pythonpath=fastapi_of("0.115"))
    base = f"http://127.0.0.1:{listening.getsockname()[1]}"
    answers = {}

    def served() -> None:  # before the worker is stopped: its answers, and its record after its first answer
        create = httpx.post(f"{base}/api/shop/items", json={"item": {"name": "a"}, "note": "n"}, timeout=10)
        answers.update(openapi=httpx.get(f"{base}/openapi.json", timeout=10).json(),
                       read=httpx.get(f"{base}/api/shop/items/3?q=2", timeout=10).json(),
                       create=[create.status_code, create.json()])
        wait_until("the chain's worker writes down what it did", lambda: (
            (run_dir / "layer-ahead.json").exists(), str(run_dir)), 10)

    try:
        view_saved_once(handle, events, listening, app)
        fresh = fresh_interpreter.on_host(AHEAD_FRESH, str(FASTAPI_0_115), str(app), str(REPO / "entrypoint"))
        taken = []
        for version in ("view-3", "view-4", "view-5", "view-6"):
            layer = next_layer(handle, events)
            assert layer.stops_at == "view"
            if version == "view-5":  # forked before the record came: it does the work ahead as it waits
                wait_until("the layer does ahead what its chain's first worker did", lambda: (
                    read_chars(layer.pid) >= plugin.stat().st_size, f"{read_chars(layer.pid)} bytes read"), 20)
            if version == "view-6":  # forked by that one once the work was done: it holds it, without doing it
                assert read_chars(layer.pid) < plugin.stat().st_size
            (app / "view.py").write_text(f"VALUE = {version!r}\n")
            answers.clear()
            said = []
            body, pid = serve_once(handle, events, listening, [["modified", str(app / "view.py")]], said,
                                   before_stop=served)
            assert pid == layer.pid and said == ["app layer"]
            assert body["view"] == version and body["plugin"] == "plugin-1", body
            assert answers == fresh  # routes taken or not, what a fresh interpreter serves
            taken.append((body["routes_taken"], body["plugin_taken"]))
        # The first of the chain had nothing done ahead; the third save's layer did it while it waited, the fourth's
        # held it from the start: their workers took the shop's two routes under /api and the compiled plugin.
        assert taken[0] == (0, 0) and taken[2:] == [(2, 1), (2, 1)], taken
        chain = json.loads((run_dir / "layer-ahead.json").read_text())
        assert str(plugin) in chain["sources"], chain["sources"]
        assert [call["settings"]["prefix"] for call in chain["includes"]] == ["/api", ""], chain["includes"]
    finally:
        handle.close()
        handle.proc.wait(timeout=10)
