"""The reload server's shell on this machine, no Docker: a warm process that does not answer never blocks
its loop, and the fresh interpreter started instead reports on a pipe of its own."""

import os
import queue
import signal

import httpx
import pytest

from procfs import not_running
from reload_loop import drive, free_port, served_alone
from repo import REPO
from unstuck import config, wire
from unstuck.reload.events import Report, WarmChildExited, WarmForked
from unstuck.reload.reloader import Reloader
from unstuck.reload.warm_process_client import WarmProcesses

APP = '''\
async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"served by a fresh interpreter"})
'''



@pytest.fixture
def server(tmp_path, monkeypatch):
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "main.py").write_text(APP)
    env = {"PYTHONPATH": str(REPO / "entrypoint"), "APP_DIR": str(tmp_path), "APP_MODULE": "app.main:app",
           "HOST": "127.0.0.1", "PORT": str(free_port()), "UNSTUCK_RUN_DIR": str(tmp_path / "run"),
           "UNSTUCK_GRACE": "0.5", "LOG_LEVEL": "warning"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    (tmp_path / "run").mkdir(mode=0o700)
    settings = config.load()
    reloader = Reloader(settings)
    reloader.sock = reloader.bind()
    reloader.warm = WarmProcesses(reloader.sock.fileno(), settings.run_dir / "preload.txt", reloader.events, True)
    reloader.warm.start(set())
    yield reloader
    for warm in (reloader.warm.current, reloader.warm.next):
        if warm is not None:
            os.kill(warm.pid, signal.SIGCONT)
    reloader.act(reloader.machine.stop())
    drive(reloader, lambda: reloader.machine.finished, "every generation gone")
    reloader.warm.close()
    reloader.sock.close()



def test_a_stalled_warm_process_never_blocks_the_loop(server):
    drive(server, lambda: server.warm.current is not None, "the warm process is ready")
    stalled = server.warm.current
    os.kill(stalled.pid, signal.SIGSTOP)  # it can no longer answer anything

    server.act(server.machine.start())  # asks the warm process to fork: must return without its answer
    waiting = server.children[1]
    assert waiting.request is not None and waiting.pid is None

    seen = queue.SimpleQueue()
    drive(server, lambda: served_alone(server), "served by a fresh interpreter", keep=seen)
    fresh = server.children[1]
    assert fresh is not waiting and fresh.popen is not None and waiting.abandoned
    assert fresh.read_fd != waiting.read_fd  # not the pipe handed to the stalled warm process
    response = httpx.get(f"http://127.0.0.1:{server.settings.port}/", timeout=10)
    assert response.text == "served by a fresh interpreter"

    # Woken up, it forks the request it was sent long ago: that late worker is killed on arrival. (It may
    # also fork a later request it still holds, e.g. the "still importing" responder's, which is not
    # abandoned and gets its own fate: only the abandoned request's worker is looked at.)
    os.kill(stalled.pid, signal.SIGCONT)
    late_pid, exits = [], {}

    def late_killed():
        while not seen.empty():
            event = seen.get()
            if isinstance(event, WarmForked) and event.request == waiting.request:
                late_pid.append(event.pid)
            elif isinstance(event, WarmChildExited):
                exits[event.pid] = event.code
        return bool(late_pid) and late_pid[0] in exits

    drive(server, late_killed, "the late fork is killed", keep=seen)
    assert exits[late_pid[0]] == -signal.SIGKILL and server.machine.current.pid == fresh.pid


def test_the_serving_generation_is_named_for_the_hand_over_even_when_its_fork_is_reported_late(server):
    """The warm process's word of a fork can reach the reload server after the worker's own "ready" (two
    pipes, read by two threads). The `current` link must still name the generation that serves: without
    it, the one it replaces has nobody to hand its keep-alive connections to, and closes them instead."""
    drive(server, lambda: server.warm.current is not None, "the warm process is ready")
    held = []
    dispatch = server.dispatch

    def fork_reports_after_ready(event) -> None:
        if isinstance(event, WarmForked):
            held.append(event)  # later: once the worker itself has said it is ready
            return
        dispatch(event)
        if isinstance(event, Report) and isinstance(event.message, (wire.Ready, wire.Failed)):
            while held:
                dispatch(held.pop(0))

    server.dispatch = fork_reports_after_ready
    server.act(server.machine.start())
    drive(server, lambda: server.machine.state() == "serving", "served")
    served_by = server.machine.current.pid
    assert served_by is not None
    assert os.readlink(server.settings.run_dir / "handoff" / "current") == f"{served_by}.sock"


def test_a_warm_process_that_dies_takes_its_worker_along_and_a_fresh_interpreter_serves_again(server):
    """The warm process is killed while its fork serves: the worker dies with it (its parent-death signal),
    and the warm process can no longer say so. The reload server must count the worker gone itself
    (`_on_warm_exited`) and serve again, from a fresh interpreter, instead of waiting for an exit that never
    comes with the port dark."""
    url = f"http://127.0.0.1:{server.settings.port}/"
    drive(server, lambda: server.warm.current is not None, "the warm process is ready")
    server.act(server.machine.start())
    drive(server, lambda: served_alone(server), "served by a fork")
    forked, warm = server.machine.current.pid, server.warm.current
    assert server.children[server.machine.current.id].popen is None  # made by the warm process

    os.kill(warm.pid, signal.SIGKILL)
    drive(server, lambda: served_alone(server) and server.machine.current.pid not in (None, forked),
          "served again after the warm process died", timeout=60.0)
    assert server.warm.current is None  # no warm process: the plain path
    assert server.children[server.machine.current.id].popen is not None
    assert httpx.get(url, timeout=10).text == "served by a fresh interpreter"
    assert not_running(forked)  # the fork did not outlive it (gone, or a zombie left for PID 1 to reap)


