"""Idle keep-alive connections move to the new generation: on this machine, two real worker processes on
one listening socket, and a client that keeps its connection open across the hand-over."""

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading

import pytest

from repo import REPO
from unstuck.generation import handoff

APP = '''\
import asyncio
import os


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    if scope["path"] == "/slow":  # answered once the test creates the release file
        while not os.path.exists({release!r}):
            await asyncio.sleep(0.01)
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
        (app_dir / "main.py").write_text(APP.format(body=body, n=len(body), release=str(tmp_path / "release")))
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
    start.release = tmp_path / "release"
    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def get(conn: socket.socket, path: str = "/") -> bytes:
    return exchange(conn, path)[1]


def exchange(conn: socket.socket, path: str = "/") -> tuple[bytes, bytes]:
    """One request on the connection: (the response's head, lowercased; its body)."""
    conn.sendall(b"GET %s HTTP/1.1\r\nHost: test\r\n\r\n" % path.encode())
    return read_response(conn)


def read_response(conn: socket.socket) -> tuple[bytes, bytes]:
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
    return head.lower(), body


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


def test_when_the_successor_is_gone_too_the_connection_ends_only_after_an_answer_that_says_so(generation, listening):
    """`current` names a generation that retired since (superseded by a newer save as the old one retires):
    the hand-over fails, and a client sending request after request must still get an answer to each, the
    last one with `Connection: close`. Kept alive, the connection was closed when next found idle, under the
    client's next request: "server disconnected without sending a response"."""
    old = generation("old")
    conn = socket.create_connection(listening.getsockname(), timeout=10)
    assert get(conn) == b"old"
    gone = generation("gone")
    handoff.point_current_at(generation.run_dir, gone.pid)
    gone.send_signal(signal.SIGTERM)
    assert gone.wait(timeout=10) == -signal.SIGTERM
    old.send_signal(signal.SIGTERM)
    answers = 0
    while True:  # as fast as it can, until the server says it closes: every request is answered
        try:
            head, body = exchange(conn)
        except OSError as exc:
            pytest.fail(f"request {answers + 1} got no answer ({exc}): the connection was closed under it")
        assert body == b"old"
        answers += 1
        if b"connection: close" in head:
            break
    assert conn.recv(1) == b""  # then closed, as it said
    assert old.wait(timeout=10) == -signal.SIGTERM  # it left by itself
    conn.close()


def test_a_busy_connection_goes_to_whoever_serves_when_its_answer_is_out(generation, listening):
    """The generation that `current` named when the old one began to retire is itself superseded before the
    old one's answer in progress is out: the connection goes to the one that serves then."""
    from waiting import wait_until

    old = generation("old")
    conn = socket.create_connection(listening.getsockname(), timeout=10)
    assert get(conn) == b"old"
    first = generation("first")
    handoff.point_current_at(generation.run_dir, first.pid)
    conn.sendall(b"GET /slow HTTP/1.1\r\nHost: test\r\n\r\n")
    wait_until("the old generation has read it", lambda: server_has_read_everything(conn))
    old.send_signal(signal.SIGTERM)
    receiving = handoff.socket_path(generation.run_dir, old.pid)
    wait_until("the old generation shuts down", lambda: (not receiving.exists(), str(receiving)))
    latest = generation("latest")
    handoff.point_current_at(generation.run_dir, latest.pid)
    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=10) == -signal.SIGTERM
    generation.release.touch()
    assert read_response(conn)[1] == b"old"  # the old code finishes what it had begun
    assert get(conn) == b"latest"
    assert old.wait(timeout=10) == -signal.SIGTERM
    conn.close()


class SocketTransport:
    """What handoff.give uses of an asyncio transport, over a real socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.reading = sock, True

    def get_extra_info(self, name: str):
        return self.sock if name == "socket" else None

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True


def give_and_wait(target, transport) -> bool:
    """handoff.give on a loop of its own, run until the outcome (taken or not) is known."""
    loop = asyncio.new_event_loop()
    try:
        outcome = loop.create_future()
        assert handoff.give(loop, target, transport, outcome.set_result), "nothing was sent"
        assert not transport.reading  # nobody reads the connection while the receiver decides
        return loop.run_until_complete(asyncio.wait_for(outcome, 10))
    finally:
        loop.close()


def test_a_hand_over_the_receiver_did_not_confirm_leaves_the_connection_with_the_giver(tmp_path):
    """A receiver that got the descriptor and went away without answering (a listener closed with its queue
    has the same effect): the giver must not let the connection go, or nobody holds it any more."""
    path = tmp_path / "receiver.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(str(path))
    listener.listen(8)
    client, served = socket.socketpair()  # stands for a client's TCP connection and the giver's end of it
    transport = SocketTransport(served)

    def receive_then_vanish() -> None:
        conn, _ = listener.accept()
        _, fds, _, _ = socket.recv_fds(conn, 64, 64)
        for fd in fds:
            os.close(fd)
        conn.close()

    receiver = threading.Thread(target=receive_then_vanish)
    receiver.start()
    assert give_and_wait(path, transport) is False
    receiver.join(timeout=10)
    assert transport.reading  # it reads on: the connection is still the giver's
    client.sendall(b"x")
    assert served.recv(1) == b"x"
    for sock in (client, served, listener):
        sock.close()


def test_a_receiver_whose_answer_comes_after_the_giver_stopped_waiting_keeps_nothing(tmp_path, monkeypatch):
    """The giver heard nothing in time and kept the connection: the receiver, taking the hand-over later,
    must close its copy instead of serving it (two owners would read the same requests)."""
    monkeypatch.setattr(handoff, "WAIT_S", 0.2)
    loop = asyncio.new_event_loop()
    receiver = handoff.Receiver(tmp_path, asyncio.Protocol)
    assert receiver.start(loop)
    client, served = socket.socketpair()
    transport = SocketTransport(served)
    open_fds = len(os.listdir("/proc/self/fd"))
    assert give_and_wait(receiver.path, transport) is False  # the receiver's loop never ran: no answer in time
    assert transport.reading
    assert receiver._accept()  # now it takes what was sent, and its answer fails
    assert not asyncio.all_tasks(loop)  # no adoption started
    assert len(os.listdir("/proc/self/fd")) == open_fds  # its copy of the descriptor is closed
    client.sendall(b"x")
    assert served.recv(1) == b"x"
    receiver.stop()
    loop.close()
    client.close()
    served.close()


def test_a_confirmed_hand_over_moves_the_connection(tmp_path):
    """The receiver's loop takes it and answers: the giver hears it was taken, and the receiver reads what
    the client sends next."""
    loop = asyncio.new_event_loop()
    made, got = [], []

    class Adopted(asyncio.Protocol):
        def connection_made(self, transport) -> None:
            made.append(transport)

        def data_received(self, data: bytes) -> None:
            got.append(data)

    async def until(condition) -> None:
        deadline = loop.time() + 10
        while not condition() and loop.time() < deadline:
            await asyncio.sleep(0.01)

    receiver = handoff.Receiver(tmp_path, Adopted)
    assert receiver.start(loop)
    client, served = socket.socketpair()
    transport = SocketTransport(served)
    taking = threading.Thread(target=lambda: loop.run_until_complete(until(lambda: made)))
    taking.start()  # the receiver's loop runs meanwhile, in its own thread, until it adopted the connection
    assert give_and_wait(receiver.path, transport) is True
    taking.join(timeout=15)
    assert made, "the receiver never adopted the connection"
    # Close-on-exec, as an accepted socket is: a subprocess the app starts must not keep it open.
    assert not os.get_inheritable(made[0].get_extra_info("socket").fileno())
    served.close()  # the giver forgets its copy: the connection lives on in the receiver's
    client.sendall(b"x")
    loop.run_until_complete(until(lambda: got))
    assert got == [b"x"]
    made[0].close()
    receiver.stop()
    loop.run_until_complete(asyncio.sleep(0))
    loop.close()
    client.close()
