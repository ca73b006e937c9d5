"""An exception raised while handling a request, answered with the page an import error gets (a 500).

Frameworks answer an uncaught exception with a generic 500 ("Internal Server Error") and leave the
traceback in the log. This ASGI middleware, around the user's app (UNSTUCK_ERROR_PAGES, on by default),
answers it instead with unstuck's error page, negotiated like the 503 page (error_page.py): the exception,
the request line, the user's frame first with its source, library frames folded. Only where nothing else
would show the error:

- the app raised and sent nothing (a plain ASGI app; a WSGI app through a2wsgi, which re-raises): the page;
- the app sent a 500, then raised (Starlette's ServerErrorMiddleware, so FastAPI's, always does): the page
  only in place of Starlette's generic "Internal Server Error"; its debug page (debug=True) or the answer of
  the app's own 500 handler goes out as it was;
- the app answered a 500 for an exception a framework hook recorded (framework_errors.py: Flask with debug
  off, Django with DEBUG=False, when they would send their generic 500): the page;
- the response had started (headers sent, a stream failing mid-way): nothing to replace; the exception goes
  on to uvicorn, which logs it and ends the response, as without unstuck.

To be able to replace it, a 500 is held back (up to HOLD_BYTES) until the app has finished it; any other
response passes through at once. Each page carries the MARKER header with an id, under which the error is
kept (the last RECENT) for the live-reload overlay (livereload.py) of a page whose fetch failed.
"""

from __future__ import annotations

import contextvars
import itertools
import logging
import os
from collections import OrderedDict
from pathlib import Path

from unstuck.errors import failure as failure_mod
from unstuck.errors.error_page import brief, negotiate, render
from unstuck.seams.uvicorn_seam import ERROR_LOGGER

MARKER = b"x-unstuck-error"
HOLD_BYTES = 64 * 1024
GENERIC_500 = b"Internal Server Error"  # Starlette's ServerErrorMiddleware.error_response
RECENT = 16

# uvicorn logs an app's exception on this logger: the page's line goes to the same stream, once.
log = logging.getLogger(ERROR_LOGGER)


class _Request:
    """What a framework hook learnt about the request in progress."""

    __slots__ = ("exc", "logged")

    def __init__(self) -> None:
        self.exc: BaseException | None = None
        self.logged = False  # the framework logged the traceback itself


_current: contextvars.ContextVar[_Request | None] = contextvars.ContextVar("unstuck_request", default=None)


def framework_renders_generic_500(exc: BaseException, logged: bool) -> None:
    """Called by a framework hook (framework_errors.py) when the framework is about to answer `exc` with its
    generic 500. It runs in the request's context, or in a copy of it (a2wsgi's and asgiref's threads run
    the app in one), which holds the same _Request."""
    request = _current.get()
    if request is not None:
        request.exc, request.logged = exc, logged


def request_line(scope) -> str:
    query = scope.get("query_string") or b""
    path, root = scope.get("path") or "/", scope.get("root_path") or ""
    if root and not path.startswith(root):  # servers before ASGI's 2023 wording leave the mount point out
        path = root + path
    return f"{scope.get('method', 'GET')} {path}" + (f"?{query.decode('latin-1')}" if query else "")


class RequestErrors:
    def __init__(self, app, app_dir: Path, with_locals: bool = False) -> None:
        self.app = app
        self.app_dir = app_dir
        self.with_locals = with_locals
        self.recent: OrderedDict[str, dict] = OrderedDict()  # id -> the overlay's data (error_page.brief)
        self._ids = itertools.count(1)
        self._prefix = f"{os.getpid()}-"  # ids differ from one generation to the next

    def lookup(self, error_id: str) -> dict | None:
        return self.recent.get(error_id)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        request = _Request()
        token = _current.set(request)
        held: list[dict] | None = None  # a 500 the app is sending, not sent on yet
        held_bytes = 0
        started = False  # a response start went out to the client
        answered = False  # the page went out in place of the app's answer

        async def flush() -> None:
            nonlocal held, started
            messages, held, started = held, None, True
            for message in messages:
                await send(message)

        async def guard(message):
            nonlocal held, held_bytes, started, answered
            if answered:
                return  # the rest of the app's own 500 goes nowhere
            if held is None:
                if message["type"] == "http.response.start":
                    if message.get("status") == 500 and not started:
                        held = [message]
                        return
                    started = True
                return await send(message)
            held.append(message)
            held_bytes += len(message.get("body", b""))
            if message["type"] == "http.response.body" and not message.get("more_body"):
                if request.exc is not None:  # a framework's generic 500 for an exception it caught
                    page = self._page(scope, request.exc, request.logged)
                    if page is None:
                        return await flush()
                    answered = True
                    await _send_page(scope, send, *page)
                return
            if held_bytes > HOLD_BYTES:  # no generic 500 is this long: the app's own, streamed on
                await flush()

        try:
            await self.app(scope, receive, guard)
        except Exception as exc:
            if answered:
                return
            if started or (held is not None and request.exc is None and not _generic(held)):
                if held is not None:
                    await flush()
                raise  # what the client got is the app's: uvicorn logs the exception and ends the response
            page = self._page(scope, exc, request.logged and request.exc is exc)
            if page is None:
                raise
            await _send_page(scope, send, *page)
            return
        finally:
            _current.reset(token)
        if held is not None and not answered:
            await flush()

    def _page(self, scope, exc: BaseException, logged: bool) -> tuple[str, bytes, bytes] | None:
        """(id, body, content type) of the page for `exc`, logged; None when it cannot be made (the app's
        answer goes out instead)."""
        try:
            failure = failure_mod.from_exception(exc, "request", self.app_dir, request=request_line(scope),
                                                 with_locals=self.with_locals)
            body, content_type = render(failure, negotiate(dict(scope.get("headers") or [])))
        except Exception:  # noqa: BLE001 - a page that cannot be made must not hide the app's exception
            log.exception("unstuck could not render the error page of this exception")
            return None
        error_id = f"{self._prefix}{next(self._ids)}"
        self.recent[error_id] = brief(failure)
        while len(self.recent) > RECENT:
            self.recent.popitem(last=False)
        # One line with the request and the file and line; the traceback too, unless the framework logged it.
        traceback = "" if logged else "\n" + failure.traceback.rstrip()
        log.error("%s failed: %s%s", failure.request, failure.headline(), traceback)
        return error_id, body, content_type


async def _send_page(scope, send, error_id: str, body: bytes, content_type: bytes) -> None:
    await send({"type": "http.response.start", "status": 500, "headers": [
        (b"content-type", content_type), (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"), (MARKER, error_id.encode())]})
    await send({"type": "http.response.body", "body": body if scope.get("method") != "HEAD" else b""})


def _generic(held: list[dict]) -> bool:
    """The held 500 is Starlette's generic answer, which says nothing the page does not."""
    return b"".join(m.get("body", b"") for m in held if m["type"] == "http.response.body") == GENERIC_500
