"""Opt-in browser live reload (UNSTUCK_LIVERELOAD=1): HTML pages refresh once a new generation serves,
and a broken save shows its error over the open page.

Every generation (the app, or the error responder) answers /__unstuck__/livereload with its own token,
and the error responder with the error too. A small script (livereload.js) is added to HTML responses;
it polls that endpoint with short requests. When the token changes to the app's, the page reloads; when
it changes to an error, the page stays and an overlay shows the error and its source over it (as Vite's
does), until the fix reloads the page. On unstuck's own 503 page the script only reloads.

Errors raised while handling a request (request_errors.py) show in the same overlay: a response of the
page's own fetch()/XMLHttpRequest carrying request_errors' marker header, and the open page itself when it
fails after a reload (on a new generation the script requests the page before reloading into it). The
overlay's data comes from this endpoint, `?error=<the marker's id>`, so that no request is made twice.
Polling, rather
than a server-sent stream or a websocket, keeps no connection open that could hold a retiring generation
back. The user's app is not changed.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

from urllib.parse import parse_qs

from unstuck.errors.error_page import brief
from unstuck.errors.failure import Failure

ENDPOINT = "/__unstuck__/livereload"
_JS = (Path(__file__).with_name("livereload.js")).read_text()


# Where the script goes: first thing in <head>, else before the page's first script, else before </body>.
# It must run before the page's own scripts, which may fetch at once: it wraps fetch and XMLHttpRequest.
_HEAD = re.compile(rb"<head(?:\s[^>]*)?>", re.IGNORECASE)
_SCRIPT = re.compile(rb"<script\b", re.IGNORECASE)


def insert(body: bytes, tag: bytes) -> bytes:
    head = _HEAD.search(body)
    if head:
        return body[:head.end()] + tag + body[head.end():]
    first = _SCRIPT.search(body)
    index = first.start() if first else body.rfind(b"</body>")
    return body[:index] + tag + body[index:] if index >= 0 else body + tag


def script(on_error_page: bool) -> bytes:
    js = _JS.replace("__ON_ERROR_PAGE__", "true" if on_error_page else "false")
    return f"<script>/* unstuck live reload */{js}</script>".encode()


class LiveReload:
    def __init__(self, app, failure: Failure | None = None, request_errors=None) -> None:
        """`failure`: what `app` (then an ErrorApp) serves; the endpoint tells it to open pages.
        `request_errors`: id -> the overlay's data of a failed request (RequestErrors.lookup), or None."""
        self.app = app
        self.request_errors = request_errors
        self.token = f"{os.getpid()}-{time.time_ns()}"
        answer = {"token": self.token, **({"error": brief(failure)} if failure is not None else {})}
        self.answer = json.dumps(answer).encode()
        self.script = script(on_error_page=failure is not None)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("method") == "HEAD":
            return await self.app(scope, receive, send)
        if scope.get("path") == ENDPOINT:
            answer = self.answer
            error_id = parse_qs((scope.get("query_string") or b"").decode("latin-1")).get("error")
            if error_id:
                found = self.request_errors(error_id[0]) if self.request_errors is not None else None
                answer = json.dumps({"token": self.token, "request_error": found}).encode()
            await send({"type": "http.response.start", "status": 200, "headers": [
                (b"content-type", b"application/json"), (b"cache-control", b"no-store"),
                (b"content-length", str(len(answer)).encode())]})
            await send({"type": "http.response.body", "body": answer})
            return

        start: dict | None = None

        async def inject(message):
            nonlocal start
            if message["type"] == "http.response.start":
                headers = {k.lower(): v for k, v in message.get("headers") or []}
                # A compressed body cannot take a script appended in plain text: left as it is.
                if headers.get(b"content-type", b"").startswith(b"text/html") and b"content-encoding" not in headers:
                    start = message  # held until the body is known to be one chunk
                    return
                return await send(message)
            if start is None:
                return await send(message)
            held, start = start, None
            if message.get("more_body"):
                # A streamed page is passed through untouched rather than buffered.
                await send(held)
                return await send(message)
            body = insert(message.get("body", b""), self.script)
            headers = [(k, v) for k, v in held.get("headers") or [] if k.lower() != b"content-length"]
            headers.append((b"content-length", str(len(body)).encode()))
            await send({**held, "headers": headers})
            await send({**message, "body": body})

        await self.app(scope, receive, inject)
