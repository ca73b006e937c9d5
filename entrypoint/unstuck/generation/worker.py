"""One generation of the app: import it, start it, serve it on the inherited socket; or serve the error.

Run by the reloader as `python -m unstuck worker`. uvicorn's own reload spawns a worker that simply dies
when the import fails, leaving the port to hang; this worker instead reports what failed to its parent
and keeps the port answering with unstuck's error responder until the parent replaces it.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import signal
import socket
import sys
import time

from unstuck import config as config_mod
from unstuck import wire
from unstuck.generation import debugger, handoff
from unstuck.project import project_env
from unstuck.errors import failure as failure_mod
from unstuck.errors import framework_errors
from unstuck.app import loading
from unstuck import logs
from unstuck.generation import output
from unstuck.processes import die_with_parent, set_process_name  # noqa: F401 - also used through worker
from unstuck.generation.draining import DrainingHTTPProtocol
from unstuck.errors.error_app import ErrorApp
from unstuck.errors.failure import Failure
from unstuck.generation.livereload import LiveReload
from unstuck.errors.request_errors import RequestErrors
from unstuck.user_files import is_under
from unstuck.seams import uvicorn_seam
from unstuck.warm import done_ahead, layer_successor, orm_ahead

class Reporter:
    """Reports (wire.Started ... wire.Uses) to the reloader over an inherited pipe, one JSON line each."""

    def __init__(self, fd: int) -> None:
        self._file = os.fdopen(fd, "w", buffering=1)

    def send(self, report) -> None:
        try:
            self._file.write(wire.encode(report).decode() + "\n")
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


class FirstResponse:
    """Tells the reloader when the generation has answered its first request (a phase of the reload);
    after that, one attribute check per request."""

    def __init__(self, app, on_first) -> None:
        self.app = app
        self._on_first = on_first

    async def __call__(self, scope, receive, send):
        if self._on_first is None or scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def watch(message):
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body") and self._on_first:
                on_first, self._on_first = self._on_first, None
                on_first()

        return await self.app(scope, receive, watch)


class ReportingServer(uvicorn_seam.Server):
    """A uvicorn Server that tells the reloader the moment it accepts connections, and starts its
    shutdown the moment it is signalled: uvicorn checks for exit every 0.1 s, during which a retiring
    generation would go on accepting new connections with the old code."""

    def __init__(self, config: uvicorn_seam.Config, on_started, run_dir=None, on_accepting=None) -> None:
        super().__init__(config)
        self._on_started = on_started
        self._on_accepting = on_accepting  # a coroutine function, run once it accepts connections
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._run_dir = run_dir
        self._receiver: handoff.Receiver | None = None
        self.signalled = False

    async def startup(self, sockets=None) -> None:
        self._loop, self._wake = asyncio.get_running_loop(), asyncio.Event()
        await super().startup(sockets=sockets)
        if self.started:
            try:  # `kill -USR1 <pid>`: what each of its connections is doing, in the log (debugging aid)
                self._loop.add_signal_handler(signal.SIGUSR1, self.describe_connections)
            except (NotImplementedError, RuntimeError, ValueError):
                pass
            if self._run_dir is not None:
                # Ready for its predecessor's idle connections before the reload server hears it is ready.
                self._receiver = handoff.Receiver(self._run_dir, lambda: uvicorn_seam.new_protocol(self),
                                                  self._give_idle)
                self._receiver.start(self._loop)
            self._on_started()
            if self._receiver is not None and self._receiver.listener is not None and not self.should_exit:
                handoff.pull(self._run_dir)  # the serving generation's idle connections, now (handoff.py)
            if self._on_accepting is not None:
                self._loop.create_task(self._on_accepting())

    async def shutdown(self, sockets=None) -> None:
        if self._receiver is not None:
            self._receiver.stop()
        successor = handoff.successor(self._run_dir) if self._run_dir is not None else None
        if successor is not None:
            # Stop accepting first; then every keep-alive connection goes to the new generation as soon as
            # it is idle (now, or after the response in progress): its next request gets the new code.
            for server in getattr(self, "servers", []):
                server.close()
        # Nobody to hand connections to (stopping): a successor that pulled earlier is no longer one. Else
        # to whoever serves when each connection goes, which may no longer be `successor` (superseded too).
        give = self._giver(None) if successor is not None else None
        for connection in list(self.server_state.connections):
            connection.give = give
        # For connections handed to it that arrive from now on (draining.DrainOnShutdown.connection_made).
        self.server_state.unstuck_retiring = (give,)
        await super().shutdown(sockets=sockets)

    def describe_connections(self) -> None:
        """Log every connection's state and every thread's stack (SIGUSR1): for a request that hangs."""
        import traceback

        lines = [f"unstuck: pid {os.getpid()} {'stopping' if self.should_exit else 'serving'}, "
                 f"{len(self.server_state.connections)} connections, {len(self.server_state.tasks)} tasks"]
        for conn in list(self.server_state.connections):
            transport = getattr(conn, "transport", None)
            peer = transport.get_extra_info("peername") if transport is not None else None
            cycle = getattr(conn, "_cycle", None)
            lines.append(
                f"  conn {peer} reading={transport.is_reading() if transport else None} "
                f"closing={transport.is_closing() if transport else None} handing={getattr(conn, '_handing', None)} "
                f"draining={getattr(conn, '_draining', None)} moving={getattr(conn, '_moving', None)} "
                f"partial={getattr(conn, '_partial', None)} give={getattr(conn, 'give', None) is not None} "
                f"pipeline={len(getattr(conn, 'pipeline', ()) or ())} cycle="
                f"{None if cycle is None else ('complete' if cycle.response_complete else 'started' if cycle.response_started else 'running')}")
        for ident, frame in sys._current_frames().items():
            lines.append(f"  thread {ident}:\n" + "".join(traceback.format_stack(frame, limit=12)))
        print("\n".join(lines), file=sys.stderr, flush=True)

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

    def _give_idle(self, successor) -> None:
        """A successor that accepts connections asks for them: give it every keep-alive connection as soon
        as it is idle (now, or after the response in progress)."""
        if self.should_exit:
            return  # shutting down: the shutdown hands everything over
        give = self._giver(successor)
        for connection in list(self.server_state.connections):
            if hasattr(connection, "move_when_idle"):
                connection.move_when_idle(give)

    def _giver(self, target):
        """Hand a connection to the generation listening on `target`; None: to the one the `current` link
        names at that moment. The protocol's `done(taken)` is called once the receiver answered."""
        def give(transport, done) -> bool:
            to = target if target is not None else handoff.successor(self._run_dir)
            if to is None:
                return False

            def handed(taken: bool) -> None:
                if taken:
                    owner = next((c for c in list(self.server_state.connections)
                                  if getattr(c, "transport", None) is transport), None)
                    if owner is None or not owner.answers_before_it_goes():
                        if owner is not None:
                            self.server_state.connections.discard(owner)
                        transport.close()  # our descriptor only: the connection lives on in the successor
                done(taken)

            return handoff.give(self._loop, to, transport, handed)

        return give

    def run(self, sockets=None) -> None:
        global _prepared_loop
        loop, _prepared_loop = _prepared_loop, None
        if loop is None:
            return super().run(sockets=sockets)
        with asyncio.Runner(loop_factory=lambda: loop) as runner:
            return runner.run(self.serve(sockets=sockets))

    def handle_exit(self, sig, frame) -> None:
        self.signalled = True
        super().handle_exit(sig, frame)
        if self._loop is not None and self._wake is not None:
            self._loop.call_soon_threadsafe(self._wake.set)


# When a generation reports the modules it uses (see serve_app): after its first answer, and in case no
# request comes, a while after it is ready. The report is also when the reload server has the warm process build
# the next app layer if that layer imports quickly (warm_process.hand_out): with no request after a reload, a
# save 1.5 s later found no layer at 2 s (the realistic bench app: 3 of 3 such saves from the spare).
USES_AFTER_SERVED_S = 0.2
USES_AFTER_READY_S = 0.5


# True in a process forked from a warm process that configured uvicorn's logging already.
_logging_configured = False
# The event loop a spare made ready for the generation it becomes (see prepare_loop).
_prepared_loop: asyncio.AbstractEventLoop | None = None


def prepare_loop() -> None:
    """In a spare, while it waits: create the event loop its generation will run on (uvloop's took ~2 ms of
    each reload). (anyio's first thread-pool worker, ~2 ms of the first request to a sync endpoint, cannot
    be started ahead: anyio stops it with the task that started it.)"""
    global _prepared_loop
    factory = _loop_factory()
    _prepared_loop = factory() if factory is not None else asyncio.new_event_loop()


def _loop_factory():
    """The event loop uvicorn would run on (uvloop when installed), as its Config chooses it; None: asyncio's."""
    return uvicorn_seam.loop_factory()


def rehearse(settings: config_mod.Settings) -> bool:
    """In a spare, while it waits: run once what every generation runs around the app's import, so that the
    first-call costs in a fresh fork (lazy caches, and the copy-on-write of each page that code touches)
    are paid ahead. Measured in a fork: the project's Python check ~2 ms the first time, ~0.4 ms after;
    uvicorn's startup to "accepting" 2.5-3.9 ms the first time, ~1 ms after. Nothing is kept: the worker
    runs all of it again, on the project's files as they are then, on a loop of its own (prepare_loop).
    True when it ran through."""
    project_env.activate(settings.app_dir, settings.project_env)

    async def app(scope, receive, send):  # a throwaway: never reachable from outside this process
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
            await send({"type": "http.response.body", "body": b"ok"})
            return
        while (await receive())["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})

    async def serve_one_request() -> None:
        config = _uvicorn_config(settings, FirstResponse(LifespanProbe(app), lambda: None), "on")
        server = ReportingServer(config, lambda: None)
        config.load()
        server.lifespan = config.lifespan_class(config)  # as uvicorn's serve() makes it before startup()
        # A listening socket of its own on the container's loopback, closed again at once: the port is the
        # inherited socket's, never this one.
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            sock.listen(1)
            await server.startup(sockets=[sock])
            reader, writer = await asyncio.open_connection(*sock.getsockname())
            writer.write(b"GET / HTTP/1.1\r\nhost: unstuck\r\n\r\n")
            await reader.readuntil(b"ok")
            writer.close()
            for listening in server.servers:
                listening.close()
            await server.lifespan.shutdown()

    # What uvicorn logs on the way ("Waiting for application startup.", the access line) is not the user's:
    # its handlers write into nothing meanwhile, on the same formatting path as a generation's.
    handlers = [h for name in uvicorn_seam.LOGGERS for h in logging.getLogger(name).handlers
                if isinstance(h, logging.StreamHandler)]
    streams = [h.setStream(io.StringIO()) for h in handlers]
    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(asyncio.wait_for(serve_one_request(), REHEARSAL_TIMEOUT_S))
        return True
    except Exception:  # noqa: BLE001 - a rehearsal that fails only costs the reload what it would save
        return False
    finally:
        for handler, stream in zip(handlers, streams):
            handler.setStream(stream)


# A rehearsal takes ~10 ms; one that hangs (nothing should) must not keep the spare from being ready.
REHEARSAL_TIMEOUT_S = 2.0


async def start_thread_pool() -> None:
    """In a generation that has just become ready: start anyio's worker thread, which FastAPI, Starlette and
    Litestar run sync endpoints on, while the first request is still on its way; otherwise that request
    starts it (~1.5 ms in a fresh fork, measured). It waits in anyio's pool like any thread a request
    started. Not in a spare: anyio ends the thread with the task that started it."""
    if "anyio" not in sys.modules:
        return
    try:
        import anyio.to_thread

        await anyio.to_thread.run_sync(int)
    except Exception:  # noqa: BLE001 - the first request would start it instead
        pass


def configure_logging(settings: config_mod.Settings) -> None:
    """uvicorn configures its logging (a `logging.config.dictConfig`) in every Config it builds: ~2 ms per
    reload in a fresh fork. The warm process does it once; the workers it forks inherit the result."""
    global _logging_configured
    uvicorn_seam.configure_logging(settings.log_level)  # as every worker's Config would
    _logging_configured = True


def _uvicorn_config(settings: config_mod.Settings, app, lifespan: str) -> uvicorn_seam.Config:
    config = uvicorn_seam.Config(
        app,
        log_config=None if _logging_configured else uvicorn_seam.LOGGING_CONFIG,
        interface="asgi3",  # every app arrives adapted to ASGI3 (unstuck.app.interface)
        host=settings.host,
        port=settings.port,
        lifespan=lifespan,
        log_level=settings.log_level,
        timeout_graceful_shutdown=settings.grace,
        http=DrainingHTTPProtocol,
    )
    logs.quiet_generations(settings.log_level)  # after the Config: it may have configured uvicorn's logging
    return config


def import_app(settings: config_mod.Settings) -> loading.Loaded:
    """Find (APP_MODULE, else discovery), import and adapt the app; a Loaded with the ASGI3 app to serve or
    the Failure to show, and what was loaded for the reports."""
    return loading.load(settings.app_module, settings.app_dir)


def serve_error(settings: config_mod.Settings, sock: socket.socket, failure: Failure, reporter: Reporter,
                app_info: dict | None = None) -> None:
    """Serve the failure on the port; report it (and what app it was about, when known) once the responder
    accepts connections."""
    app = LiveReload(ErrorApp(failure), failure) if settings.livereload else ErrorApp(failure)
    server = ReportingServer(_uvicorn_config(settings, app, "off"),
                             lambda: reporter.send(wire.Failed(failure.to_dict(), time.monotonic(), app_info)),
                             settings.run_dir)
    server.run(sockets=[sock])


def wrap_app(app, settings: config_mod.Settings):
    """The user's app with unstuck's request-time error page (UNSTUCK_ERROR_PAGES) and live reload
    (UNSTUCK_LIVERELOAD) around it; live reload outside, so that the error page gets its script too."""
    errors = None
    if settings.error_pages != "off":
        framework_errors.install(app)
        app = errors = RequestErrors(app, settings.app_dir, with_locals=settings.error_pages == "locals")
    if settings.livereload:
        app = LiveReload(app, request_errors=errors.lookup if errors is not None else None)
    return app


# Failures no process state can cause: a fresh interpreter would show the same, so a fast path shows them
# at once instead of having them checked (see held_for_checking).
CERTAIN = {"SyntaxError", "IndentationError", "TabError"}


def held_for_checking(failure: Failure, reporter: Reporter, source: str, app_info: dict | None) -> bool:
    """In a generation made by a fast path (`source`: forked from the warm process, its spare or its app
    layer): report the failure as held and serve nothing, so the reload server tries the same code in a
    fresh interpreter before anything is shown (a preloaded module or one imported ahead in a different order
    can make correct code fail). False when it is to be served here: plain path, or a certain failure."""
    if not source or failure.phase == "discovery":
        return False
    frame = failure.failing_frame()
    if failure.exc_type in CERTAIN and frame is not None and frame.get("user"):
        return False
    reporter.send(wire.Failed(failure.to_dict(), time.monotonic(), app_info, held=True, source=source))
    return True


def serve_app(settings: config_mod.Settings, sock: socket.socket, reporter: Reporter, source: str = "",
              loaded: loading.Loaded | None = None, started: float | None = None) -> None:
    """Import the app (or finish with the one `loaded` already: an app layer's, its import resumed at `started`),
    then serve it, or the failure."""
    if loaded is None:
        started = time.monotonic()
        loaded = import_app(settings)
    if loaded.failure is not None:
        if not held_for_checking(loaded.failure, reporter, source, loaded.info):
            serve_error(settings, sock, loaded.failure, reporter, loaded.info)
        return
    unproven = orm_ahead.unproven() if source else None
    if unproven is not None:  # what it would serve may not be a fresh interpreter's: that one decides
        held_for_checking(Failure("import", "MappersConfiguredAhead", unproven), reporter, orm_ahead.SOURCE,
                          loaded.info)
        return
    imported = time.monotonic() - started
    reporter.send(wire.Imported(time.monotonic()))

    # The probe wraps the app before uvicorn sees it: uvicorn calls what it is given with no arguments to
    # detect factories, which must never reach the user's object (the interface is already known).
    probe = LifespanProbe(wrap_app(loaded.app, settings))
    config = _uvicorn_config(settings, probe, loaded.lifespan)
    try:
        config.load()
    except BaseException as exc:  # noqa: BLE001 - the port must say so instead, with the traceback
        failure = failure_mod.from_exception(exc, "import", settings.app_dir)
        if not held_for_checking(failure, reporter, source, loaded.info):
            serve_error(settings, sock, failure, reporter, loaded.info)
        return
    uses_report: list[asyncio.TimerHandle] = []

    def send_uses() -> None:
        preloadable, own = modules_by_origin(settings.app_dir)
        reporter.send(wire.Uses(preloadable, [entry for entry in own if entry[1].endswith(".py")]))
        layer_successor.record_written_pages(settings.run_dir)  # made from an app layer's chain: what it wrote
        done_ahead.record(settings.run_dir)  # and what its chain's next layer can do ahead

    def report_uses(delay: float) -> None:
        # The modules it uses, for the warm process to preload, once the answers that matter are out:
        # listing them touches every module object (copy-on-write after the fork: milliseconds). After the
        # first request, whose lazy imports (anyio's thread pool, encoders ...) the next generation's first
        # answer then does not pay; a while after ready only in case no request comes (it is replaced by
        # the first: otherwise it would take those milliseconds again, as the next save may come in).
        for pending in uses_report:
            pending.cancel()
        uses_report[:] = [asyncio.get_running_loop().call_later(delay, send_uses)]

    def on_served() -> None:
        reporter.send(wire.Served(time.monotonic()))
        report_uses(USES_AFTER_SERVED_S)

    config.loaded_app = FirstResponse(config.loaded_app, on_served)

    def on_started() -> None:
        reporter.send(wire.Ready(time.monotonic(), round(imported, 4), loaded.info))
        report_uses(USES_AFTER_READY_S)
        if settings.debug:
            debugger.listen_when_free(settings.host, settings.debug_port)

    server = ReportingServer(config, on_started, settings.run_dir, start_thread_pool)
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
        if not held_for_checking(failure, reporter, source, loaded.info):
            serve_error(settings, sock, failure, reporter, loaded.info)


def modules_by_origin(app_dir) -> tuple[list[str], list[tuple[str, str, str, bool]]]:
    """One pass over sys.modules (listing them touches every module object: copy-on-write in a fork):
    - the modules the app pulled in from outside its own tree (stdlib, site-packages), in the order they
      were imported (sys.modules keeps it): what a warm process can import ahead of the next generation, in
      that order (never unstuck's own, never the user's code);
    - the user's own modules (name, file, who started the import, whether the framework did), in the order
      their imports started (import_order.py): what the warm process's app layer may import ahead of a
      reload that does not change them (app_layer.py)."""
    from unstuck.warm import import_order

    preloadable, own = [], []
    for name, module in list(sys.modules.items()):
        if name == "__main__":
            continue
        path = getattr(module, "__file__", None)
        if isinstance(path, str) and is_under(path, app_dir):
            own.append((name, path))
        elif not name.startswith("unstuck"):
            preloadable.append(name)
    unrecorded = (len(own), "", True)  # imported before the recorder was installed: last, as the framework's
    ordered = []
    for position, (name, path) in enumerate(own):
        index, importer, framework = import_order.started(name) or unrecorded
        ordered.append((index, position, name, path, importer, framework))
    ordered.sort()
    return preloadable, [(name, path, importer, framework) for _, _, name, path, importer, framework in ordered]


def _die_by_signal(signum, frame) -> None:
    output.drain(0.5)  # what it printed last, if the log is read
    signal.signal(signum, signal.SIG_DFL)
    signal.raise_signal(signum)


def stop_is_never_lost() -> None:
    """SIGTERM keeps its default meaning (die at once: an import in progress, a superseded generation),
    but through a Python handler. uvicorn installs its own handlers while a server runs and restores the
    previous ones when it stops; were that SIG_DFL, a SIGTERM caught while uvicorn restores it (a stop
    arriving as the app's lifespan startup fails) would be dropped by Python, and the worker would go on
    serving the error page until it is killed, with its connections reset."""
    signal.signal(signal.SIGTERM, _die_by_signal)
    # Forked workers start with SIGTERM and SIGINT blocked (see warm_process.main): a stop sent before
    # this point is delivered now.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})


def run(settings: config_mod.Settings, listen_fd: int, report_fd: int, parent_pid: int,
        failure: Failure | None = None, source: str = "") -> int:
    """Serve one generation on the inherited socket; shared by spawned and forked workers (`source`: what the
    warm process made it from; empty for a fresh interpreter, the plain path)."""
    sock, reporter = begin(listen_fd, report_fd, parent_pid, source)
    failure = failure or enter_project(settings)
    if failure is not None:
        serve_error(settings, sock, failure, reporter)
        return 0
    serve_app(settings, sock, reporter, source)
    return 0


def begin(listen_fd: int, report_fd: int, parent_pid: int, source: str) -> tuple[socket.socket, Reporter]:
    """Become a generation: its signals, its output, the port and the report pipe; says "started". (An app layer
    that has imported the app up to the saved module does this when a request reaches it: paused_load.py.)"""
    stop_is_never_lost()
    # SIGUSR1 asks a serving generation to describe its connections (describe_connections); before it serves,
    # it must not end it (its default action).
    signal.signal(signal.SIGUSR1, lambda *_: None)
    die_with_parent(parent_pid)
    set_process_name("unstuck-worker")
    output.pump_stdio()  # a log nobody reads must not stall its requests (output.py)
    for fd in (listen_fd, report_fd):
        os.set_inheritable(fd, False)  # the user's subprocesses must not hold the port or the pipe
    sock = socket.socket(fileno=listen_fd)
    reporter = Reporter(report_fd)
    # The reload's "forked" phase: when this process runs, not when the reload server hears of it. With its
    # pid: the warm process's word of the fork may come after this process's "ready" (the same pipe keeps
    # "started" first), and the reload server names the generation that serves by it (handoff.py).
    reporter.send(wire.Started(time.monotonic(), os.getpid(), source))
    return sock, reporter


def enter_project(settings: config_mod.Settings) -> Failure | None:
    """Before the app's import: the project's Python check and packages, its directory as the working one and
    first on sys.path; the Failure to serve instead when this Python does not fit the project."""
    failure = loading.activate_project(settings.app_dir, settings.project_env)  # Python check, sys.path
    if failure is not None:
        return failure
    os.chdir(settings.app_dir)
    if str(settings.app_dir) not in sys.path:
        sys.path.insert(0, str(settings.app_dir))
    from unstuck.warm import import_order

    import_order.install(settings.app_dir)  # the order the app layer replays (a fork has it from the warm process)
    return None


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
