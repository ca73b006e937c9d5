"""The ASGI app served while the user's app cannot: 503 + Retry-After, saying what is wrong.

uvicorn has nothing that serves while an app fails to import; this is that, negotiated for browsers
(HTML), API clients (JSON) and curl (plain text), rendered by error_page. It is only ever served in place
of the user's app, never in front of it, so the app's own 500s are untouched once it loads.
"""

from __future__ import annotations

from unstuck.errors.error_page import RETRY_AFTER, fingerprint, negotiate, render
from unstuck.errors.failure import Failure


class ErrorApp:
    def __init__(self, failure: Failure) -> None:
        self.failure = failure
        self.fingerprint = fingerprint(failure)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        elif scope["type"] == "websocket":
            # Refuse the handshake; 1013 = "try again later". A close reason may take 123 bytes at most.
            reason = self.failure.headline().encode()[:120].decode(errors="ignore")
            await send({"type": "websocket.close", "code": 1013, "reason": reason})
        elif scope["type"] == "http":
            body, content_type = render(self.failure, negotiate(dict(scope.get("headers") or [])))
            await send({"type": "http.response.start", "status": 503, "headers": [
                (b"content-type", content_type), (b"retry-after", RETRY_AFTER.encode()),
                (b"cache-control", b"no-store"), (b"x-unstuck-state", self.failure.phase.encode()),
                (b"x-unstuck-failure", self.fingerprint.encode()),
                (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body if scope.get("method") != "HEAD" else b""})
