"""The ASGI app served while the user's app cannot: 503 + Retry-After, saying what is wrong.

uvicorn has nothing that serves while an app fails to import; this is that, negotiated for browsers
(HTML), API clients (JSON) and curl (plain text). It is only ever served in place of the user's app,
never in front of it, so the app's own 500s are untouched once it loads.
"""

from __future__ import annotations

import html
import json

from unstuck.failure import Failure

RETRY_AFTER = "1"
_TITLES = {
    "import": "The app failed to import",
    "startup": "The app's startup (lifespan) failed",
    "crash": "The app crashed",
    "starting": "The app is starting",
    "environment": "The project needs another Python",
}


def _wants(headers: dict[bytes, bytes]) -> str:
    accept = headers.get(b"accept", b"").decode("latin-1").lower()
    if "application/json" in accept and "text/html" not in accept:
        return "json"
    if "text/html" in accept:
        return "html"
    return "text"


def render(failure: Failure, kind: str) -> tuple[bytes, bytes]:
    title = _TITLES.get(failure.phase, "The app cannot serve")
    if kind == "json":
        body = {"error": title, "phase": failure.phase, "exception": failure.exc_type, "message": failure.message,
                "file": failure.file, "line": failure.line, "traceback": failure.traceback,
                "served_by": "unstuck", "retry_after": int(RETRY_AFTER)}
        return json.dumps(body, indent=2).encode() + b"\n", b"application/json"
    if kind == "html":
        esc = html.escape
        page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="2">
<title>503 · {esc(title)}</title>
<style>body{{font:15px/1.5 system-ui,sans-serif;margin:2rem auto;max-width:60rem;padding:0 1rem;color:#222}}
h1{{color:#b00020;font-size:1.4rem}} code,pre{{font:13px/1.4 ui-monospace,monospace}}
pre{{background:#f6f6f6;border-left:4px solid #b00020;padding:1rem;overflow-x:auto}} .where{{font-weight:bold}}</style>
</head><body>
<h1>{esc(title)}</h1>
<p><code>{esc(failure.exc_type)}: {esc(failure.message)}</code></p>
<p class="where">{esc(failure.where() or "")}</p>
<pre>{esc(failure.traceback or "")}</pre>
<p>Served by unstuck while your app cannot load. Save a fix and this page reloads into your app.</p>
</body></html>
"""
        return page.encode(), b"text/html; charset=utf-8"
    text = f"503 {title}\n{failure.headline()}\n\n{failure.traceback}".rstrip() + "\n"
    return text.encode(), b"text/plain; charset=utf-8"


class ErrorApp:
    def __init__(self, failure: Failure) -> None:
        self.failure = failure

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
            # Refuse the handshake; 1013 = "try again later".
            await send({"type": "websocket.close", "code": 1013, "reason": self.failure.headline()[:120]})
        elif scope["type"] == "http":
            body, content_type = render(self.failure, _wants(dict(scope.get("headers") or [])))
            await send({"type": "http.response.start", "status": 503, "headers": [
                (b"content-type", content_type), (b"retry-after", RETRY_AFTER.encode()),
                (b"cache-control", b"no-store"), (b"x-unstuck-state", self.failure.phase.encode()),
                (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body if scope.get("method") != "HEAD" else b""})
