"""One generation of the app: import it, start it, serve it on the inherited socket; or serve the error.

Run by the reloader as `python -m unstuck worker`. uvicorn's own reload spawns a worker that simply dies
when the import fails, leaving the port to hang; this worker instead reports what failed to its parent
and keeps the port answering with unstuck's error responder until the parent replaces it.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import os
import signal
import socket
import sys
import time

import uvicorn
from uvicorn.importer import ImportFromStringError, import_from_string

from unstuck import config as config_mod
from unstuck import debugger, project_env
from unstuck import failure as failure_mod
from unstuck.draining import DrainingHTTPProtocol
from unstuck.error_app import ErrorApp
from unstuck.failure import Failure
from unstuck.livereload import LiveReload

PR_SET_NAME = 15
PR_SET_PDEATHSIG = 1


def set_process_name(name: str) -> None:
    """Name the process in ps/top (its `comm`): forked workers otherwise carry the warm process's name."""
    try:
        ctypes.CDLL(None).prctl(PR_SET_NAME, name.encode()[:15], 0, 0, 0)
    except (OSError, AttributeError):
        pass


def die_with_parent(parent_pid: int) -> None:
    # If the reloader is killed, a surviving worker would keep the port and block its successor's bind.
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


class Reporter:
    """JSON lines to the reloader over an inherited pipe."""

    def __init__(self, fd: int) -> None:
        self._file = os.fdopen(fd, "w", buffering=1)

    def send(self, event: str, **data) -> None:
        try:
            self._file.write(json.dumps({"event": event, **data}) + "\n")
        except (BrokenPipeError, OSError):
            pass  # the reloader is gone; pdeathsig will end us


class LifespanProbe:
    """Wraps the app to keep the exception of a failed lifespan startup (uvicorn only logs it)."""

    def __init__(self, app) -> None:
        self.app = app
        self.exc: BaseException | None = None
        self.failed_message: str | None = None

    async def __call__(self, scope, receive, send):
        if scope["type"] != "lifespan":
            return await self.app(scope, receive, send)

        async def probe_send(message):
            if message["type"] == "lifespan.startup.failed":
                self.failed_message = message.get("message") or "lifespan startup failed"
            await send(message)

        try:
            return await self.app(scope, receive, probe_send)
        except BaseException as exc:
            self.exc = exc
            raise


class ReportingServer(uvicorn.Server):
    """A uvicorn Server that tells the reloader the moment it accepts connections, and starts its
    shutdown the moment it is signalled: uvicorn checks for exit every 0.1 s, during which a retiring
    generation would go on accepting new connections with the old code."""

    def __init__(self, config: uvicorn.Config, on_started) -> None:
        super().__init__(config)
        self._on_started = on_started
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self.signalled = False

    async def startup(self, sockets=None) -> None:
        self._loop, self._wake = asyncio.get_running_loop(), asyncio.Event()
        await super().startup(sockets=sockets)
        if self.started:
            self._on_started()

    async def main_loop(self) -> None:
        counter = 0
        should_exit = await self.on_tick(counter)
        while not should_exit:
            counter = (counter + 1) % 864000
            try:
                await asyncio.wait_for(self._wake.wait(), 0.1)
            except asyncio.TimeoutError:
                pass
            should_exit = await self.on_tick(counter)

    def handle_exit(self, sig, frame) -> None:
        self.signalled = True
        super().handle_exit(sig, frame)
        if self._loop is not None and self._wake is not None:
            self._loop.call_soon_threadsafe(self._wake.set)


def _uvicorn_config(settings: config_mod.Settings, app, lifespan: str) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        lifespan=lifespan,
        log_level=settings.log_level,
        timeout_graceful_shutdown=settings.grace,
        http=DrainingHTTPProtocol,
    )


def import_app(settings: config_mod.Settings):
    """Import APP_MODULE; return (app, None) or (None, Failure)."""
    module, _, attr = settings.app_module.partition(":")
    try:
        return import_from_string(settings.app_module), None
    except ImportFromStringError as exc:
        # uvicorn's message names the module or attribute; add where we looked and how to fix it.
        text = str(exc)
        if text.startswith("Attribute"):
            spec_file = getattr(sys.modules.get(module), "__file__", None)
            where = failure_mod.display_path(spec_file, settings.app_dir) if spec_file else None
            msg = f"APP_MODULE={settings.app_module}: module {module!r} has no attribute {attr!r}; define it or fix APP_MODULE"
            return None, Failure("import", "ImportError", msg, where, None, text)
        expected = module.replace(".", "/") + ".py"
        msg = (f"APP_MODULE={settings.app_module}: no module {module!r} under {settings.app_dir} "
               f"(expected {expected}); create it or fix APP_MODULE")
        return None, Failure("import", "ModuleNotFoundError", msg, expected, None, text)
    except BaseException as exc:  # SystemExit and KeyboardInterrupt from user code are failures too
        return None, failure_mod.from_exception(exc, "import", settings.app_dir)


def serve_error(settings: config_mod.Settings, sock: socket.socket, failure: Failure, reporter: Reporter) -> None:
    """Serve the failure on the port; report it once the responder accepts connections."""
    app = LiveReload(ErrorApp(failure)) if settings.livereload else ErrorApp(failure)
    server = ReportingServer(_uvicorn_config(settings, app, "off"),
                             lambda: reporter.send("failed", failure=failure.to_dict()))
    server.run(sockets=[sock])


def serve_app(settings: config_mod.Settings, sock: socket.socket, reporter: Reporter) -> None:
    started = time.monotonic()
    app, failure = import_app(settings)
    if failure is not None:
        serve_error(settings, sock, failure, reporter)
        return
    imported = time.monotonic() - started

    config = _uvicorn_config(settings, app, "auto")
    try:
        config.load()  # uvicorn logs and exits when APP_MODULE names something that is not an app
    except BaseException:  # noqa: BLE001 - the port must say so instead
        module = sys.modules.get(settings.app_module.partition(":")[0])
        path = getattr(module, "__file__", None)
        message = (f"APP_MODULE={settings.app_module} is a {type(app).__name__}, not an ASGI application; "
                   "point APP_MODULE at your app object")
        where = failure_mod.display_path(path, settings.app_dir) if path else None
        serve_error(settings, sock, Failure("import", "TypeError", message, where), reporter)
        return
    probe = LifespanProbe(LiveReload(config.loaded_app) if settings.livereload else config.loaded_app)
    config.loaded_app = probe

    def on_started() -> None:
        reporter.send("ready", import_s=round(imported, 4), modules=preloadable_modules(settings.app_dir))
        if settings.debug:
            debugger.listen_when_free(settings.host, settings.debug_port)

    server = ReportingServer(config, on_started)
    try:
        server.run(sockets=[sock])
    except SystemExit:
        if server.signalled:
            # Told to stop while its startup was failing: uvicorn drops the captured signal when startup
            # exits, so without this the error page would be served on and the worker never retire.
            return
        if server.started or (probe.exc is None and probe.failed_message is None):
            raise
        if probe.exc is not None:
            failure = failure_mod.from_exception(probe.exc, "startup", settings.app_dir)
        else:
            failure = Failure("startup", "LifespanStartupFailed", probe.failed_message.strip().splitlines()[-1],
                              traceback=probe.failed_message)
        serve_error(settings, sock, failure, reporter)


def preloadable_modules(app_dir) -> list[str]:
    """Modules the app pulled in from outside its own tree (stdlib, site-packages): what a warm process
    can import ahead of the next generation. The user's watched code is never among them."""
    app_prefix = str(app_dir).rstrip("/") + "/"
    names = []
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if name == "__main__" or name.startswith("unstuck") or (path and path.startswith(app_prefix)):
            continue
        names.append(name)
    return sorted(names)


def run(settings: config_mod.Settings, listen_fd: int, report_fd: int, parent_pid: int,
        failure: Failure | None = None) -> int:
    """Serve one generation on the inherited socket; shared by spawned and forked workers."""
    die_with_parent(parent_pid)
    set_process_name("unstuck-worker")
    for fd in (listen_fd, report_fd):
        os.set_inheritable(fd, False)  # the user's subprocesses must not hold the port or the pipe
    sock = socket.socket(fileno=listen_fd)
    reporter = Reporter(report_fd)
    failure = failure or project_env.activate(settings.app_dir, settings.project_env)  # Python check, sys.path
    if failure is not None:
        serve_error(settings, sock, failure, reporter)
        return 0
    os.chdir(settings.app_dir)
    if str(settings.app_dir) not in sys.path:
        sys.path.insert(0, str(settings.app_dir))
    serve_app(settings, sock, reporter)
    return 0


def main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="unstuck worker")
    parser.add_argument("--listen-fd", type=int, required=True)
    parser.add_argument("--report-fd", type=int, required=True)
    parser.add_argument("--parent-pid", type=int, required=True)
    parser.add_argument("--failure", help="serve this failure (JSON) instead of the app")
    args = parser.parse_args(argv)
    failure = Failure.from_dict(json.loads(args.failure)) if args.failure else None
    return run(config_mod.load(check_dirs=False), args.listen_fd, args.report_fd, args.parent_pid, failure)
