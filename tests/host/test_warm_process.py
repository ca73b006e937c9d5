"""The warm process on this machine, no Docker: it forks workers that serve on the inherited socket, and
reports their exits the way subprocess.Popen would."""

import os
import queue
import signal
import socket
import time

import httpx
import pytest

from repo import REPO
from unstuck.forked import ForkServerHandle

FAILURE = {"phase": "import", "exc_type": "SyntaxError", "message": "invalid syntax", "file": "app/main.py",
           "line": 3, "traceback": ""}


@pytest.fixture
def listening():
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    yield sock
    sock.close()


@pytest.fixture
def warm(listening, tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(REPO / "entrypoint"))
    monkeypatch.setenv("APP_DIR", str(tmp_path))
    monkeypatch.setenv("UNSTUCK_GRACE", "0.5")
    preload = tmp_path / "preload.txt"
    preload.write_text("json\nfastapi\n")
    events = queue.SimpleQueue()
    handle = ForkServerHandle(listening.fileno(), preload, frozenset({"json", "fastapi"}), events)
    kind, _, report = events.get(timeout=30)
    assert kind == "warm_ready" and report["modules"] >= 3  # uvicorn, unstuck.worker and the two asked for
    handle.ready = True
    yield handle, events
    handle.retire()
    handle.close()
    handle.proc.wait(timeout=10)


def test_forked_worker_serves_and_its_exit_is_reported(warm, listening):
    handle, _ = warm
    read_fd, write_fd = os.pipe()
    child = handle.fork(write_fd, FAILURE)
    os.close(write_fd)
    assert child is not None and child.pid != handle.pid
    with os.fdopen(read_fd) as reports:
        assert '"event": "failed"' in reports.readline()  # the error responder accepts connections
        response = httpx.get(f"http://127.0.0.1:{listening.getsockname()[1]}/", timeout=10)
        assert response.status_code == 503 and "SyntaxError" in response.text
        child.send_signal(signal.SIGTERM)
        assert child.wait(timeout=10) == -signal.SIGTERM  # uvicorn re-raises the signal after shutting down
        assert child.poll() == -signal.SIGTERM


def test_killed_child_reports_sigkill_and_retired_warm_process_exits_after_its_children(warm):
    handle, events = warm
    read_fd, write_fd = os.pipe()
    child = handle.fork(write_fd, FAILURE)
    os.close(write_fd)
    os.close(read_fd)
    handle.retire()
    time.sleep(0.2)  # the warm process must outlive its child: give it the chance to exit too early
    assert handle.proc.poll() is None
    child.kill()
    assert child.wait(timeout=10) == -signal.SIGKILL
    kind, gone, _ = events.get(timeout=10)
    assert (kind, gone) == ("warm_exit", handle)
