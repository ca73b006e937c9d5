"""The contracts unstuck relies on in uvicorn's, watchfiles' and supervisor's internals (unstuck/seams/).

Each test names one contract; when an upgrade moves it, the failure says which library, which version and
which contract, instead of a reload that hangs somewhere later. Run against the pinned versions (the test
requirements) and, by hand, against the newest releases (see the README's Tests section).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import inspect
import io
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from unstuck.seams import supervisor_seam, uvicorn_seam, watchfiles_seam


@contextlib.contextmanager
def contract(library: str, name: str):
    """Re-raise any failure inside as one line naming the library, its installed version and the contract."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - every way a contract breaks is reported the same way
        version = importlib.metadata.version(library)
        raise AssertionError(f"{library} {version} broke the contract {name!r}: {type(exc).__name__}: {exc}") from exc


def run_python(code: str) -> subprocess.CompletedProcess:
    """`code` in a fresh interpreter that imports this unstuck."""
    import os
    from pathlib import Path

    import unstuck

    env = {**os.environ, "PYTHONPATH": str(Path(unstuck.__file__).parent.parent)}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)


def parameters(func) -> list[str]:
    return [p for p in inspect.signature(func).parameters if p != "self"]


# -- uvicorn ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method, expected", [
    ("startup", ["sockets"]), ("main_loop", []), ("shutdown", ["sockets"]), ("on_tick", ["counter"]),
    ("handle_exit", ["sig", "frame"]), ("serve", ["sockets"]),
])
def test_uvicorn_server_phases_take_what_reporting_server_passes(method, expected):
    with contract("uvicorn", f"Server.{method}({', '.join(expected)})"):
        assert parameters(getattr(uvicorn_seam.Server, method)) == expected


def test_uvicorn_auto_protocol_is_the_httptools_one_with_the_callbacks_draining_extends():
    with contract("uvicorn", "AutoHTTPProtocol has connection_made, data_received, on_message_begin, "
                             "on_headers_complete, on_response_complete, shutdown"):
        for name in ("connection_made", "data_received", "on_message_begin", "on_headers_complete",
                     "on_response_complete", "shutdown"):
            assert callable(getattr(uvicorn_seam.AutoHTTPProtocol, name, None)), f"no {name}"


def test_uvicorn_config_helpers_bind_choose_a_loop_and_name_its_loggers():
    with contract("uvicorn", "Config.bind_socket() returns a TCP socket bound to host:port"):
        sock = uvicorn_seam.bind_socket("127.0.0.1", 0)
        try:
            assert sock.type == socket.SOCK_STREAM and sock.getsockname()[0] == "127.0.0.1"
        finally:
            sock.close()
    with contract("uvicorn", "Config.get_loop_factory() returns None or a loop factory"):
        factory = uvicorn_seam.loop_factory()
        if factory is not None:
            loop = factory()
            assert isinstance(loop, asyncio.AbstractEventLoop)
            loop.close()
    with contract("uvicorn", "LOGGING_CONFIG configures the loggers uvicorn, uvicorn.error, uvicorn.access"):
        assert set(uvicorn_seam.LOGGERS) <= set(uvicorn_seam.LOGGING_CONFIG["loggers"])
    with contract("uvicorn", "DefaultFormatter knows %(levelprefix)s"):
        import logging

        formatter = uvicorn_seam.DefaultFormatter("%(levelprefix)s %(message)s", use_colors=False)
        line = formatter.format(logging.LogRecord("x", logging.INFO, __file__, 1, "hello", None, None))
        assert line.startswith("INFO:") and line.endswith(" hello")


def test_uvicorn_serves_through_the_phases_and_the_connection_bookkeeping_generations_use():
    """One real server on a loopback socket, with the overrides ReportingServer and DrainingHTTPProtocol make,
    recording what uvicorn does; then each contract is checked on the record."""
    seen: dict = {"phases": [], "cycles": 0, "ticks": []}

    class Protocol(uvicorn_seam.AutoHTTPProtocol):
        _cycle = None

        @property
        def cycle(self):
            return self._cycle

        @cycle.setter
        def cycle(self, value):
            if value is not None:
                seen["cycles"] += 1
                value.keep_alive = seen["cycles"] < 2  # the second request is answered with Connection: close
            self._cycle = value

    class Server(uvicorn_seam.Server):
        async def startup(self, sockets=None):
            seen["phases"].append(("startup", sockets is not None))
            seen["lifespan_state"] = hasattr(self.lifespan, "state")
            await super().startup(sockets=sockets)
            seen["started"] = self.started
            seen["servers"] = len(self.servers)

        async def main_loop(self):
            seen["phases"].append(("main_loop", True))
            await super().main_loop()

        async def on_tick(self, counter):
            result = await super().on_tick(counter)
            seen["ticks"].append(result)
            return result

        async def shutdown(self, sockets=None):
            seen["phases"].append(("shutdown", sockets is not None))
            await super().shutdown(sockets=sockets)

    async def app(scope, receive, send):
        state = server.server_state
        protocols = list(state.connections)
        seen["connections"] = [type(p) for p in protocols]
        proto = protocols[0]
        seen["attributes"] = {name: hasattr(proto, name)
                              for name in ("transport", "pipeline", "server_state", "connections")}
        seen["cycle_fields"] = {name: hasattr(proto.cycle, name)
                                for name in ("keep_alive", "response_started", "response_complete")}
        seen["tasks_is_a_set"] = isinstance(state.tasks, set)
        seen["new_protocol"] = type(uvicorn_seam.new_protocol(server))
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})

    config = uvicorn_seam.Config(app, http=Protocol, lifespan="off", log_config=None, log_level="warning")
    server = Server(config)

    async def scenario():
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            await asyncio.sleep(0.01)
        reader, writer = await asyncio.open_connection(*sock.getsockname())
        answers = []
        for _ in range(2):
            writer.write(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
            answers.append(await asyncio.wait_for(reader.readuntil(b"ok"), 5))
        writer.close()
        # As a signal would (SIGUSR2 here, recorded instead of ending the test run).
        server.handle_exit(signal.SIGUSR2, None)
        await asyncio.wait_for(serving, 10)
        return answers, server.should_exit

    raised: list[int] = []
    previous = signal.signal(signal.SIGUSR2, lambda signum, _frame: raised.append(signum))
    try:
        answers, should_exit = asyncio.run(scenario())
    finally:
        signal.signal(signal.SIGUSR2, previous)

    with contract("uvicorn", "serve() runs startup(sockets=), main_loop(), shutdown(sockets=) in order"):
        assert seen["phases"] == [("startup", True), ("main_loop", True), ("shutdown", True)]
    with contract("uvicorn", "Server.lifespan (with .state) exists before startup()"):
        assert seen["lifespan_state"]
    with contract("uvicorn", "after startup(): started is True and servers lists the listening servers"):
        assert seen["started"] and seen["servers"] >= 1
    with contract("uvicorn", "handle_exit() sets should_exit; on_tick() then returns True and main_loop ends"):
        assert should_exit and seen["ticks"][-1] is True
    with contract("uvicorn", "a signal handle_exit() was given is raised again once serve() returns"):
        assert raised == [signal.SIGUSR2]
    with contract("uvicorn", "Config(http=cls) serves each connection with cls, kept in server_state.connections"):
        assert seen["connections"] == [Protocol]
    with contract("uvicorn", "a connection protocol has transport, pipeline, server_state, connections"):
        assert all(seen["attributes"].values()), seen["attributes"]
    with contract("uvicorn", "server_state.tasks is a set"):
        assert seen["tasks_is_a_set"]
    with contract("uvicorn", "each request assigns protocol.cycle, with keep_alive, response_started, "
                             "response_complete"):
        assert seen["cycles"] == 2 and all(seen["cycle_fields"].values()), seen["cycle_fields"]
    with contract("uvicorn", "a cycle's keep_alive = False makes the response Connection: close"):
        assert b"connection: close" not in answers[0].lower() and b"connection: close" in answers[1].lower()
    with contract("uvicorn", "http_protocol_class(config=, server_state=, app_state=) builds a connection protocol"):
        assert seen["new_protocol"] is Protocol


# -- watchfiles ---------------------------------------------------------------------------------------


class CountingStop:
    def __init__(self, on_first=None):
        self.calls = 0
        self.stop = False
        self.on_first = on_first

    def is_set(self) -> bool:
        self.calls += 1
        if self.calls == 1 and self.on_first is not None:
            self.on_first()
        return self.stop


def rust_notify(path):
    return watchfiles_seam.RustNotify([str(path)], False, False, 300, True, False)


def test_watchfiles_rust_notify_reports_a_change_after_it_polled_its_stop_event(tmp_path):
    target = tmp_path / "new.py"
    with contract("watchfiles", "RustNotify(paths, debug, force_polling, poll_delay_ms, recursive, "
                                "ignore_permission_denied).watch(debounce, step, timeout, stop_event) returns "
                                "{(int, path)}; is_set() is first called once the watcher exists"):
        stop = CountingStop(on_first=lambda: target.write_text("x = 1\n"))
        with rust_notify(tmp_path) as watcher:
            raw = watcher.watch(50, 5, 5000, stop)
        assert isinstance(raw, set) and stop.calls >= 1, raw
        changes = {(watchfiles_seam.Change(change), path) for change, path in raw}
        assert (watchfiles_seam.Change.added, str(target)) in changes, changes


def test_watchfiles_rust_notify_times_out_and_stops_as_watch_stream_expects(tmp_path):
    with contract("watchfiles", "watch() returns 'timeout' when nothing changed within timeout_ms, polling "
                                "is_set() after every step"):
        stop = CountingStop()
        with rust_notify(tmp_path) as watcher:
            assert watcher.watch(50, 5, 200, stop) == "timeout"
        assert stop.calls > 3, stop.calls
    with contract("watchfiles", "watch() returns 'stop' once stop_event.is_set() is True"):
        stop = CountingStop()
        stop.stop = True
        with rust_notify(tmp_path) as watcher:
            assert watcher.watch(50, 5, 5000, stop) == "stop"


def test_watchfiles_change_and_default_filter_are_what_the_watcher_filters_with():
    with contract("watchfiles", "Change(1|2|3) is added|modified|deleted"):
        assert [watchfiles_seam.Change(i).name for i in (1, 2, 3)] == ["added", "modified", "deleted"]
    with contract("watchfiles", "DefaultFilter()(change, path) and DefaultFilter.ignore_dirs"):
        assert {"__pycache__", ".git", "node_modules"} <= set(watchfiles_seam.DefaultFilter.ignore_dirs)
        passes = watchfiles_seam.DefaultFilter()
        assert passes(watchfiles_seam.Change.modified, "/app/main.py")
        assert not passes(watchfiles_seam.Change.modified, "/app/__pycache__/main.cpython-311.pyc")


EMFILE_PROBE = r"""
import os, resource, tempfile
from unstuck.seams.watchfiles_seam import RustNotify
from unstuck.watching import inotify_limits
where = tempfile.gettempdir()
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))
held = []
try:
    while True:
        held.append(os.open("/dev/null", os.O_RDONLY))
except OSError:
    pass
try:
    with RustNotify([where], False, False, 300, True, False):
        print("no error")
except BaseException as exc:
    limit = inotify_limits.classify(exc)
    print(type(exc).__name__, "|", exc, "|", limit.kind if limit else None)
"""


def test_watchfiles_says_too_many_open_files_the_way_inotify_limits_reads_it():
    with contract("watchfiles", "a watcher that cannot be created for lack of descriptors raises an error "
                                "inotify_limits.classify names 'instances' (os error 24)"):
        out = run_python(EMFILE_PROBE)
        assert out.stdout.strip().endswith("| instances"), out.stdout + out.stderr


# -- supervisor ---------------------------------------------------------------------------------------


def test_supervisor_polls_with_a_class_whose_poll_the_launcher_caps():
    from supervisor import poller

    with contract("supervisor", "supervisor.poller.Poller is one of " + "/".join(supervisor_seam.POLLERS)
                  + " and its poll(timeout) is where supervisord waits"):
        assert poller.Poller.__name__ in supervisor_seam.POLLERS
        assert parameters(poller.Poller.poll) == ["timeout"]
        from supervisor import supervisord

        assert callable(supervisord.main)
        assert "self.options.poller.poll(timeout)" in inspect.getsource(supervisord.Supervisor.runforever)


CAPPED_PROBE = r"""
import time
import unstuck.supervision.supervisord_launch  # caps the poll as supervisord runs it
from supervisor import poller

class Options:
    logger = None

p = poller.Poller(Options())
started = time.monotonic()
p.poll(3.0)
print(round(time.monotonic() - started, 3))
"""


def test_supervisor_poll_returns_within_the_cap_once_the_launcher_is_imported():
    with contract("supervisor", "Poller.poll(3.0) with nothing registered returns after the capped 0.1 s"):
        out = run_python(CAPPED_PROBE)
        assert out.returncode == 0, out.stderr
        assert float(out.stdout) < 1.0, out.stdout


@pytest.mark.parametrize("method, expected", [
    ("startProcess", ["name", "wait"]), ("signalProcessGroup", ["name", "signal"]),
    ("startProcessGroup", ["name", "wait"]), ("stopProcessGroup", ["name", "wait"]),
    ("reloadConfig", []), ("removeProcessGroup", ["name"]), ("addProcessGroup", ["name"]),
])
def test_supervisor_rpc_methods_the_reload_server_and_unfatal_call(method, expected):
    from supervisor.rpcinterface import SupervisorNamespaceRPCInterface

    with contract("supervisor", f"supervisor.{method}({', '.join(expected)}) over XML-RPC"):
        assert parameters(getattr(SupervisorNamespaceRPCInterface, method)) == expected
    with contract("supervisor", "childutils.getRPCInterface(env) talks to SUPERVISOR_SERVER_URL"):
        rpc = supervisor_seam.rpc_interface({"SUPERVISOR_SERVER_URL": "unix:///nonexistent/supervisor.sock"})
        with pytest.raises(OSError):
            rpc.supervisor.getState()


def test_supervisor_event_listener_protocol():
    payload = "processname:web groupname:web from_state:BACKOFF"
    header = (f"ver:3.0 server:supervisor serial:7 pool:unfatal poolserial:7 eventname:PROCESS_STATE_FATAL "
              f"len:{len(payload)}\n")
    stdin, stdout = io.StringIO(header + payload), io.StringIO()
    with contract("supervisor", "childutils.listener.wait(stdin, stdout) writes READY and returns (headers, payload)"):
        headers, got = supervisor_seam.listener.wait(stdin, stdout)
        assert stdout.getvalue() == "READY\n"
        assert headers["eventname"] == "PROCESS_STATE_FATAL" and got == payload
    with contract("supervisor", "childutils.get_headers('k:v k:v') is a dict"):
        assert supervisor_seam.get_headers(payload) == {"processname": "web", "groupname": "web",
                                                        "from_state": "BACKOFF"}
    with contract("supervisor", "childutils.listener.ok(stdout) writes RESULT 2\\nOK"):
        supervisor_seam.listener.ok(stdout)
        assert stdout.getvalue().endswith("RESULT 2\nOK")


def test_no_module_outside_the_seams_imports_these_libraries():
    """The seams are the only way in: a new `import uvicorn` elsewhere bypasses the contracts above."""
    import ast
    from pathlib import Path

    import unstuck

    package = Path(unstuck.__file__).parent
    offenders = []
    for path in sorted(package.rglob("*.py")):
        if path.parent.name == "seams":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            for name in names:
                if name.split(".")[0] in ("uvicorn", "watchfiles", "supervisor"):
                    offenders.append(f"{path.relative_to(package.parent)}:{node.lineno} imports {name}")
    assert not offenders, "\n".join(offenders)
