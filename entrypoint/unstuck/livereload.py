"""Opt-in browser live reload (UNSTUCK_LIVERELOAD=1): HTML pages refresh once a new generation serves.

Every generation (the app, or the error page) answers /__unstuck__/livereload with its own token, and
a small script is added to HTML responses that polls it with short requests: when the token changes, the
page reloads. Polling, rather than a server-sent stream or a websocket, keeps no connection open that
could hold a retiring generation back. The user's app is not changed.
"""

from __future__ import annotations

import json
import os
import time

ENDPOINT = "/__unstuck__/livereload"
SCRIPT = (
    "<script>/* unstuck live reload */(function(){var t=null;function poll(){"
    "fetch('" + ENDPOINT + "',{cache:'no-store'}).then(function(r){return r.json()}).then(function(d){"
    "if(t===null){t=d.token}else if(d.token!==t){location.reload();return}"
    "setTimeout(poll,400)}).catch(function(){setTimeout(poll,400)})}poll()})();</script>"
).encode()


class LiveReload:
    def __init__(self, app) -> None:
        self.app = app
        self.token = f"{os.getpid()}-{time.time_ns()}"

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("method") == "HEAD":
            return await self.app(scope, receive, send)
        if scope.get("path") == ENDPOINT:
            body = json.dumps({"token": self.token}).encode()
            await send({"type": "http.response.start", "status": 200, "headers": [
                (b"content-type", b"application/json"), (b"cache-control", b"no-store"),
                (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
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
            body = message.get("body", b"")
            index = body.rfind(b"</body>")
            body = body[:index] + SCRIPT + body[index:] if index >= 0 else body + SCRIPT
            headers = [(k, v) for k, v in held.get("headers") or [] if k.lower() != b"content-length"]
            headers.append((b"content-length", str(len(body)).encode()))
            await send({**held, "headers": headers})
            await send({**message, "body": body})

        await self.app(scope, receive, inject)
