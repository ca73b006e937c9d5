"""The error, rendered for browsers (HTML), API clients (JSON) and curl (plain text).

All three lead with what the user can act on: the headline, the hint, and the source around the failing
line in their own code. Library frames and the raw traceback stay available, folded (HTML) or after the
context (text), or in full (JSON).
"""

from __future__ import annotations

import hashlib
import html
import json

from unstuck.errors.failure import Failure

RETRY_AFTER = "1"
POLL_MS = 1000
TITLES = {
    "import": "The app failed to import",
    "startup": "The app's startup (lifespan) failed",
    "crash": "The app crashed",
    "starting": "The app is starting",
    "discovery": "No app found to serve",
    "environment": "The project needs another Python",
    "request": "The request failed",
}


def title(failure: Failure) -> str:
    return TITLES.get(failure.phase, "The app cannot serve")


def status(failure: Failure) -> int:
    """500 for an exception raised while handling a request (the app serves; that request failed), 503 while
    the app cannot serve at all (retry once it can)."""
    return 500 if failure.phase == "request" else 503


def fingerprint(failure: Failure) -> str:
    """Tells one failure from another: the page reloads itself when the one served changes."""
    return hashlib.sha256(json.dumps(failure.to_dict(), sort_keys=True).encode()).hexdigest()[:16]


def ordered_frames(failure: Failure) -> tuple[list[dict], list[dict]]:
    """(the user's frames, innermost first; the other frames, innermost first)."""
    innermost_first = list(reversed(failure.frames))
    return [f for f in innermost_first if f.get("user")], [f for f in innermost_first if not f.get("user")]


def summary(failure: Failure) -> dict:
    """The error as data: the JSON body, and what the live-reload overlay shows."""
    return {"error": title(failure), "phase": failure.phase, "exception": failure.exc_type,
            "message": failure.message, "file": failure.file, "line": failure.line, "hint": failure.hint,
            "frames": failure.frames, "frames_omitted": failure.frames_omitted,
            **({"request": failure.request} if failure.request else {})}


def brief(failure: Failure) -> dict:
    """What the live-reload overlay shows: the headline, the hint and the failing frame's source."""
    return {"title": title(failure), "headline": failure.headline(), "exception": failure.exc_type,
            "message": failure.message, "file": failure.file, "line": failure.line, "hint": failure.hint,
            "frame": failure.failing_frame(), "phase": failure.phase, "request": failure.request}


def _caret(source: str, column: int | None, end_column: int | None) -> str | None:
    """Spaces (tabs where the source has them, so that it lines up) then ^ under [column, end_column)."""
    if not column or column < 1 or column > len(source) + 1:
        return None
    end = max(end_column or column + 1, column + 1)
    pad = "".join("\t" if c == "\t" else " " for c in source[:column - 1])
    return pad + "^" * (min(end, len(source) + 1) - column or 1)


def _context_rows(frame: dict):
    """(line number, source, is the frame's own line) for each context line."""
    start = frame.get("context_start") or frame.get("line") or 0
    for offset, source in enumerate(frame.get("context") or []):
        yield start + offset, source, start + offset == frame.get("line")


def _location(frame: dict) -> str:
    where = f"{frame.get('file')}:{frame.get('line')}" if frame.get("line") else str(frame.get("file"))
    return f"{where} in {frame['function']}" if frame.get("function") else where


# -- text ---------------------------------------------------------------------------------------------

def _text_frame(frame: dict) -> str:
    rows = list(_context_rows(frame))
    width = len(str(rows[-1][0])) if rows else 1
    out = [f"  {_location(frame)}"]
    for number, source, own in rows:
        out.append(f"  {'>' if own else ' '} {number:>{width}} | {source}")
        caret = _caret(source, frame.get("column"), frame.get("end_column")) if own else None
        if caret:
            out.append(f"    {' ' * width} | {caret}")
    out.extend(f"    {name} = {value}" for name, value in (frame.get("locals") or {}).items())
    return "\n".join(out)


def as_text(failure: Failure) -> str:
    request = f"\n{failure.request}" if failure.request else ""
    parts = [f"{status(failure)} {title(failure)}{request}\n{failure.headline()}"]
    if failure.hint:
        parts.append(f"hint: {failure.hint}")
    failing = failure.failing_frame()
    if failing and failing.get("context"):
        parts.append(_text_frame(failing))
    if failure.traceback:
        parts.append(failure.traceback.rstrip())
    return "\n\n".join(parts) + "\n"


# -- HTML ---------------------------------------------------------------------------------------------

def _html_frame(frame: dict) -> str:
    esc = html.escape
    rows = list(_context_rows(frame))
    width = len(str(rows[-1][0])) if rows else 1
    lines = []
    for number, source, own in rows:
        gutter = f'<span class="ln">{number:>{width}}</span> '
        if own:
            lines.append(f'<mark class="failing">{gutter}{esc(source)}</mark>')
            caret = _caret(source, frame.get("column"), frame.get("end_column"))
            if caret:
                lines.append(f'<span class="caret">{" " * (width + 1)}{esc(caret)}</span>')
        else:
            lines.append(f"{gutter}{esc(source)}")
    kind = "user" if frame.get("user") else "library"
    code = f'<pre class="code">{chr(10).join(lines)}</pre>' if lines else ""
    local_rows = "".join(f"<tr><th>{esc(name)}</th><td><code>{esc(value)}</code></td></tr>"
                         for name, value in (frame.get("locals") or {}).items())
    local_table = f'<table class="locals">{local_rows}</table>' if local_rows else ""
    return (f'<div class="frame {kind}"><p class="loc"><code>{esc(_location(frame))}</code></p>{code}'
            f"{local_table}</div>")


STYLE = """body{font:15px/1.5 system-ui,sans-serif;margin:2rem auto;max-width:64rem;padding:0 1rem;color:#222}
h1{color:#b00020;font-size:1.4rem}h2{font-size:1.05rem;margin:1.5rem 0 .5rem}
code,pre{font:13px/1.45 ui-monospace,SFMono-Regular,Menlo,monospace}
pre{background:#f6f6f6;border-left:4px solid #b00020;padding:.75rem 1rem;overflow-x:auto;margin:.25rem 0 1rem}
.where{font-weight:bold}.hint{background:#fff8e1;border-left:4px solid #f0a000;padding:.5rem 1rem}
.frame .loc{margin:.75rem 0 0}.library pre{border-left-color:#999}
mark.failing{display:inline-block;min-width:100%;background:#ffd7d7;color:inherit;font-weight:bold}.caret{color:#b00020;font-weight:bold}
.ln{color:#888;user-select:none}details{margin:1rem 0}summary{cursor:pointer;color:#555}
.request{font:bold 14px ui-monospace,Menlo,monospace;color:#555}
table.locals{border-collapse:collapse;margin:0 0 1rem;font-size:13px}.locals th{text-align:left;padding:0 1rem 0 0;
font-weight:normal;color:#555;vertical-align:top}.locals td code{white-space:pre-wrap;word-break:break-all}"""


def _reload_script(failure: Failure) -> str:
    # Reloads once another response would be served (the app, or another error) by polling this URL with
    # short requests, rather than a <meta refresh>, which would also fold the open <details> every time.
    # Without JavaScript, the <noscript> refresh does the job.
    return ("<script>(function(){var f=" + json.dumps(fingerprint(failure)) + ";function poll(){"
            "fetch(location.href,{cache:'no-store',headers:{accept:'text/html'}}).then(function(r){"
            "if(r.status!==503||r.headers.get('x-unstuck-failure')!==f){location.reload()}"
            f"else{{setTimeout(poll,{POLL_MS})}}}},function(){{setTimeout(poll,{POLL_MS})}})}}"
            f"setTimeout(poll,{POLL_MS})}})();</script>")


def as_html(failure: Failure) -> str:
    esc = html.escape
    user, library = ordered_frames(failure)
    sections = []
    if failure.hint:
        sections.append(f'<p class="hint"><strong>Hint:</strong> {esc(failure.hint)}</p>')
    if user:
        sections.append("<h2>Your code</h2>" + "".join(_html_frame(f) for f in user))
    if library:
        label = "library frame" if len(library) == 1 else "library frames"
        omitted = (f"<p>{failure.frames_omitted} more frames are left out: see the full traceback.</p>"
                   if failure.frames_omitted else "")
        sections.append(f'<details class="library"><summary>{len(library)} {label} (installed packages, '
                        f'Python, unstuck)</summary>{"".join(_html_frame(f) for f in library)}{omitted}</details>')
    if failure.traceback:
        summary_text = "Full traceback" if failure.frames else "Traceback"
        sections.append(f'<details class="traceback"{"" if failure.frames else " open"}><summary>{summary_text}'
                        f"</summary><pre>{esc(failure.traceback)}</pre></details>")
    if failure.phase == "request":
        # The app serves: only this request failed. Nothing polls it (requesting it again may not be safe).
        refresh, request = "", f'<p class="request">{esc(failure.request or "")}</p>'
        footer = ("Served by unstuck in place of the app's generic 500 (UNSTUCK_ERROR_PAGES=0 turns this off). "
                  "Save a fix and retry the request.")
        script = ""
    else:
        refresh, request = '<noscript><meta http-equiv="refresh" content="2"></noscript>', ""
        footer = "Served by unstuck while your app cannot load. Save a fix and this page reloads into your app."
        script = _reload_script(failure)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">{refresh}
<title>{status(failure)} · {esc(title(failure))}</title>
<style>{STYLE}</style>
</head><body>
<h1>{esc(title(failure))}</h1>
{request}<p class="headline"><code>{esc(failure.exc_type or "")}: {esc(failure.message or "")}</code></p>
<p class="where">{esc(failure.where())}</p>
{chr(10).join(sections)}
<p>{footer}</p>
{script}
</body></html>
"""


def negotiate(headers: dict[bytes, bytes]) -> str:
    """"json", "html" or "text", from the request's Accept header (curl sends none, or */*)."""
    accept = headers.get(b"accept", b"").decode("latin-1").lower()
    if "application/json" in accept and "text/html" not in accept:
        return "json"
    if "text/html" in accept:
        return "html"
    return "text"


def render(failure: Failure, kind: str) -> tuple[bytes, bytes]:
    """(body, content type) for kind "json", "html" or "text"."""
    if kind == "json":
        body = {**summary(failure), "traceback": failure.traceback, "served_by": "unstuck"}
        if status(failure) == 503:
            body["retry_after"] = int(RETRY_AFTER)
        return json.dumps(body, indent=2).encode() + b"\n", b"application/json"
    if kind == "html":
        return as_html(failure).encode(), b"text/html; charset=utf-8"
    return as_text(failure).encode(), b"text/plain; charset=utf-8"
