"""Idle keep-alive connections move to the new generation: on this machine, two real worker processes on
one listening socket, and a client that keeps its connection open across the hand-over."""

import json
import os
import signal
import socket
import subprocess
import sys

import pytest

from repo import REPO
from unstuck import handoff

APP = '''\
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({{"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"{n}")]}})
    await send({{"type": "http.response.body", "body": b"{body}"}})
'''


@pytest.fixture
def generation(listening, tmp_path):
    procs = []
    run_dir = tmp_path / "run"
    run_dir.mkdir(mode=0o700)

    def start(body: str) -> subprocess.Popen:
        app_dir = tmp_path / body
        app_dir.mkdir()
        (app_dir / "main.py").write_text(APP.format(body=body, n=len(body)))
        read_fd, write_fd = os.pipe()
        env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(REPO / "entrypoint"), "APP_DIR": str(app_dir),
               "APP_MODULE": "main:app", "UNSTUCK_RUN_DIR": str(run_dir), "UNSTUCK_GRACE": "2", "LOG_LEVEL": "warning"}
        proc = subprocess.Popen([sys.executable, "-m", "unstuck", "worker", "--listen-fd", str(listening.fileno()),
                                 "--report-fd", str(write_fd), "--parent-pid", str(os.getpid())],
                                pass_fds=(listening.fileno(), write_fd), env=env)
        procs.append(proc)
        os.close(write_fd)
        with os.fdopen(read_fd) as reports:
            for line in reports:
                if json.loads(line)["event"] in ("ready", "failed"):
                    break
        return proc

    start.run_dir = run_dir
    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def get(conn: socket.socket) -> bytes:
    conn.sendall(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            raise ConnectionError(f"closed after {data!r}")
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
    while len(body) < length:
        body += conn.recv(4096)
    return body


def test_an_idle_keep_alive_connection_is_answered_by_the_new_generation(generation, listening):
    old = generation("old")
    conn = socket.create_connection(listening.getsockname(), timeout=10)
    assert get(conn) == b"old"
    new = generation("new")
    handoff.point_current_at(generation.run_dir, new.pid)
    old.send_signal(signal.SIGTERM)
    assert old.wait(timeout=10) == -signal.SIGTERM  # gone: the connection now lives in the new generation only
    assert get(conn) == b"new"  # the same TCP connection, never closed: no reconnect, no old code
    assert get(conn) == b"new"
    conn.close()


def test_a_new_generation_takes_the_idle_connections_as_soon_as_it_is_ready(generation, listening):
    old = generation("old")
    handoff.point_current_at(generation.run_dir, old.pid)  # what the reload server does when it serves
    conn = socket.create_connection(listening.getsockname(), timeout=10)
    assert get(conn) == b"old"
    generation("new")  # returns once it reported ready: nothing signals the old generation
    from waiting import wait_until

    def answered_by_new() -> tuple[bool, str]:
        body = get(conn)  # the same connection throughout: the old generation answers until it gives it up
        return body == b"new", body.decode()

    wait_until("the new generation answers on the client's connection", answered_by_new, timeout=10)
    assert old.poll() is None  # it was never retired: the new generation asked for the connection
    # A connection opened after that may still reach the old generation (both accept until it is retired);
    # what it says is its own until then: only idle keep-alive connections moved.
    conn.close()


def test_a_generation_retired_before_it_is_served_gives_what_it_pulled_back(generation, listening):
    """Superseded by a newer save (or the stop) as it became ready: the reload server never makes it
    current, and the connection it pulled returns to the generation that still serves."""
    from waiting import wait_until

    old = generation("old")
    handoff.point_current_at(generation.run_dir, old.pid)
    conn = socket.create_connection(listening.getsockname(), timeout=10)
    assert get(conn) == b"old"
    superseded = generation("superseded")
    wait_until("the connection moved", lambda: ((body := get(conn)) == b"superseded", body.decode()), timeout=10)
    superseded.send_signal(signal.SIGTERM)  # `current` still names the old generation
    assert superseded.wait(timeout=10) == -signal.SIGTERM
    assert get(conn) == b"old"  # the same connection, back where the serving code is
    assert old.poll() is None


def test_with_no_successor_the_connection_is_drained_and_closed(generation, listening):
    old = generation("old")
    conn = socket.create_connection(listening.getsockname(), timeout=10)
    assert get(conn) == b"old"
    handoff.point_current_at(generation.run_dir, None)  # stopping: nobody to hand it to
    old.send_signal(signal.SIGTERM)
    assert old.wait(timeout=10) == -signal.SIGTERM
    with pytest.raises(OSError):
        get(conn)


def server_has_read_everything(conn: socket.socket) -> tuple[bool, str]:
    """Whether the server's end of `conn` has nothing left in its receive queue (/proc/net/tcp)."""
    client_port = conn.getsockname()[1]
    server_port = conn.getpeername()[1]
    for line in open("/proc/net/tcp").read().splitlines()[1:]:
        fields = line.split()
        local, remote, queues = fields[1], fields[2], fields[4]
        if int(local.split(":")[1], 16) == server_port and int(remote.split(":")[1], 16) == client_port:
            rx_queue = int(queues.split(":")[1], 16)
            return rx_queue == 0, f"rx_queue {rx_queue}"
    return False, "no such connection yet"


def test_a_half_received_request_is_answered_by_the_old_generation_then_the_connection_moves(generation, listening):
    from waiting import wait_until

    old = generation("old")
    conn = socket.create_connection(listening.getsockname(), timeout=10)
    assert get(conn) == b"old"
    new = generation("new")
    conn.sendall(b"GET / HTTP/1.1\r\nHo")  # the start of a request, read by the old generation's parser
    wait_until("the old generation has read it", lambda: server_has_read_everything(conn))
    handoff.point_current_at(generation.run_dir, new.pid)
    old.send_signal(signal.SIGTERM)
    # Its shutdown has begun (it stops taking connections first): only then does the rest arrive.
    receiving = handoff.socket_path(generation.run_dir, old.pid)
    wait_until("the old generation shuts down", lambda: (not receiving.exists(), str(receiving)))
    conn.sendall(b"st: test\r\n\r\n")
    data = b""
    while not data.endswith(b"old"):
        chunk = conn.recv(4096)
        assert chunk, f"closed after {data!r}"
        data += chunk
    assert data.startswith(b"HTTP/1.1 200"), data  # the old code answers what it had begun to read
    assert old.wait(timeout=10) == -signal.SIGTERM
    assert get(conn) == b"new"  # then the connection moved, once idle
