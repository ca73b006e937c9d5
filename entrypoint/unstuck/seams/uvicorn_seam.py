"""uvicorn as unstuck uses it, its internals included. Every use of uvicorn goes through here.

Beyond `uvicorn.Config`/`uvicorn.Server(config).run()`, a generation relies on (each contract is tested in
tests/unit/test_seams.py against the installed uvicorn):
- `Server.serve(sockets)` calling `startup(sockets=)`, `main_loop()`, `shutdown(sockets=)` in that order, with
  `main_loop` ending once `on_tick(counter)` returns True (set by `handle_exit(sig, frame)`): ReportingServer
  overrides the three phases (it tells the reload server when it accepts, wakes at once on a signal, and
  hands its connections over on shutdown);
- `Server.started`, `should_exit`, `servers` (the asyncio servers), `lifespan` (with `.state`, made before
  startup; `lifespan.shutdown()`), `server_state.connections` (each live protocol) and `.tasks`;
- `Config(http=<a protocol class>)` giving that class as `http_protocol_class`, built by uvicorn as
  `cls(config=, server_state=, app_state=)`; `Config.lifespan_class`, `load()` then `loaded_app`,
  `get_loop_factory()`, `bind_socket()` (logs and exits on failure);
- the httptools protocol (AutoHTTPProtocol when httptools is installed): `connection_made`, `data_received`,
  the parser callbacks `on_message_begin`/`on_headers_complete`, `on_response_complete`, `shutdown()`,
  and its attributes `transport`, `pipeline`, `server_state`, `connections` and `cycle` (assigned per
  request, with `keep_alive`, `response_started`, `response_complete`): draining.py extends it;
- the logger names "uvicorn", "uvicorn.error", "uvicorn.access", `LOGGING_CONFIG` and `DefaultFormatter`
  with its `%(levelprefix)s`.
"""

from __future__ import annotations

import socket

import uvicorn
from uvicorn.config import LOGGING_CONFIG
from uvicorn.logging import DefaultFormatter
from uvicorn.protocols.http.auto import AutoHTTPProtocol

__all__ = ["Server", "Config", "LOGGING_CONFIG", "DefaultFormatter", "AutoHTTPProtocol", "LOGGERS", "ERROR_LOGGER",
           "bind_socket", "loop_factory", "configure_logging", "new_protocol", "asgi2_middleware"]

Server = uvicorn.Server
Config = uvicorn.Config

LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")
ERROR_LOGGER = "uvicorn.error"


def bind_socket(host: str, port: int) -> socket.socket:
    """The listening socket uvicorn would bind (its options, its error line); SystemExit when it cannot."""
    return Config(app=None, host=host, port=port).bind_socket()


def loop_factory():
    """The event loop uvicorn would run on (uvloop when installed), as its Config chooses it; None: asyncio's."""
    return Config(None, log_config=None).get_loop_factory()


def configure_logging(level: str) -> None:
    """uvicorn's logging, as every Config it builds configures it (a dictConfig)."""
    Config(None, log_level=level)


def new_protocol(server: uvicorn.Server) -> object:
    """A connection protocol of `server`'s own kind, for a connection it did not accept itself (one handed
    over by its predecessor, handoff.py)."""
    return server.config.http_protocol_class(config=server.config, server_state=server.server_state,
                                             app_state=server.lifespan.state)


def asgi2_middleware(app):
    """uvicorn's own adapter of an ASGI2 app (imported when one is served)."""
    from uvicorn.middleware.asgi2 import ASGI2Middleware

    return ASGI2Middleware(app)
