"""The stack of a failure as structured frames, each with the source lines around its failing line.

The error page leads with the user's own code, so each frame says whether it is the user's (a file under
APP_DIR, not site-packages) and the few frames shown in full carry the lines around the failing one.

A frame is a plain dict, as it travels in the Failure's JSON:
    {"file": "app/main.py", "line": 12, "function": "index", "user": true, "failing": true,
     "column": 5, "end_column": 9,          # 1-based, end exclusive, on `line`; null when unknown
     "context_start": 7, "context": ["...", ...],   # source lines from context_start on
     "locals": {"name": "repr", ...}}   # only when asked (UNSTUCK_ERROR_PAGES=locals), the user's frames only

Sizes are capped (a Failure crosses a 64 KB SOCK_SEQPACKET message, see sizes.py): at most MAX_FRAMES
frames (the outermost few, the failing one, the innermost ones), full context on CONTEXT_FRAMES of them
(the others carry their one line), every string clipped by its encoded size. Worst case, all caps reached:
4 x 11 lines x 162 B + 16 x (path 160 + name 80 + keys 150) + 12 x 162 B ~ 15 KB. Locals are only ever
taken for a failed request, whose page is rendered in the process it failed in: they never cross a pipe.
"""

from __future__ import annotations

import linecache
import os
import traceback
from pathlib import Path
from types import TracebackType

from unstuck.sizes import clip
from unstuck.user_files import is_user_file

CONTEXT = 5  # lines either side of the failing line
MAX_FRAMES = 16
OUTER_FRAMES = 3  # of MAX_FRAMES, kept from the outermost end: where the call began
CONTEXT_FRAMES = 4
LINE_BYTES = 160
PATH_BYTES = 160
NAME_BYTES = 80
LOCALS = 20  # names shown per frame
VALUE_BYTES = 200
# A local whose name says it holds a secret shows as MASK: the page is for the developer's eyes, but may be
# screenshotted, pasted into an issue or shown on a shared screen.
SECRET_WORDS = ("key", "secret", "token", "password")
MASK = "********"


def display_path(path: str, app_dir: Path) -> str:
    try:
        return os.path.relpath(path, app_dir) if Path(path).is_relative_to(app_dir) else path
    except ValueError:
        return path


def from_user_code(tb: TracebackType | None, app_dir: Path) -> TracebackType | None:
    """The traceback from its first frame in the user's code on (None when there is none): importlib's,
    uvicorn's and unstuck's frames above it say nothing about the user's mistake."""
    while tb is not None and not is_user_file(tb.tb_frame.f_code.co_filename, app_dir):
        tb = tb.tb_next
    return tb


def is_secret(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in SECRET_WORDS)


def _safe_repr(value) -> str:
    try:
        text = repr(value)
    except Exception as exc:  # noqa: BLE001 - a user's __repr__ that fails must not hide the error
        text = f"<repr failed: {type(exc).__name__}>"
    return clip(text, VALUE_BYTES)


def local_values(frame_locals: dict) -> dict[str, str]:
    """The first LOCALS names (dunder names and a generator's hidden ".0" left out) with their repr,
    clipped; secrets masked."""
    shown = {}
    for name, value in frame_locals.items():
        if len(shown) >= LOCALS:
            break
        if name.startswith("__") or not name.isidentifier():
            continue
        shown[clip(name, NAME_BYTES)] = MASK if is_secret(name) else _safe_repr(value)
    return shown


def _char_column(raw_line: str, byte_offset: int) -> int:
    # Code positions are UTF-8 byte offsets; the page counts characters.
    return len(raw_line.encode()[:byte_offset].decode(errors="ignore"))


def _frame(file: str, line: int | None, function: str | None, user: bool, app_dir: Path,
           column: int | None = None, end_column: int | None = None, module_globals: dict | None = None,
           fallback_text: str | None = None) -> dict:
    return {"file": display_path(file, app_dir), "line": line, "function": function, "user": user,
            "failing": False, "column": column, "end_column": end_column, "_path": file,
            "_globals": module_globals, "_fallback": fallback_text}


def _traceback_frames(tb: TracebackType | None, app_dir: Path, with_locals: bool = False) -> list[dict]:
    frames = []
    for (frame_obj, _), summary in zip(traceback.walk_tb(tb), traceback.extract_tb(tb)):
        column = end_column = None
        positions = (getattr(summary, "colno", None), getattr(summary, "end_colno", None))
        if None not in positions and summary.end_lineno == summary.lineno:  # one-line expression
            raw = linecache.getline(summary.filename, summary.lineno, frame_obj.f_globals)
            if raw:
                column = _char_column(raw, summary.colno) + 1
                end_column = _char_column(raw, summary.end_colno) + 1
        user = is_user_file(summary.filename, app_dir)
        frame = _frame(summary.filename, summary.lineno, summary.name, user, app_dir, column, end_column,
                       frame_obj.f_globals)
        if with_locals and user:
            frame["locals"] = local_values(frame_obj.f_locals)
        frames.append(frame)
    return frames


def _syntax_error_frame(exc: SyntaxError, app_dir: Path) -> dict:
    # The failing line is in the file being compiled, which no frame of the traceback is in.
    end = exc.end_offset if exc.end_lineno in (None, exc.lineno) and (exc.end_offset or 0) > (exc.offset or 0) else None
    return _frame(exc.filename, exc.lineno, None, is_user_file(exc.filename, app_dir), app_dir,
                  exc.offset, end or ((exc.offset + 1) if exc.offset else None), fallback_text=exc.text)


def _select(frames: list[dict], failing: int) -> list[int]:
    """Indices of the frames kept: the outermost few, the failing one, then the innermost ones."""
    chosen = {failing, *range(min(OUTER_FRAMES, len(frames)))}
    for index in reversed(range(len(frames))):
        if len(chosen) >= MAX_FRAMES:
            break
        chosen.add(index)
    return sorted(chosen)


def _with_context(frames: list[dict], kept: list[int], failing: int) -> set[int]:
    """The kept frames shown with their surrounding lines: the failing one, the user's other frames
    innermost first, then the innermost frame (where a library raised)."""
    ranked = [failing, *(i for i in reversed(kept) if frames[i]["user"]), kept[-1]]
    return set(list(dict.fromkeys(ranked))[:CONTEXT_FRAMES])


def _fill_context(frame: dict, around: int) -> None:
    path, line = frame.pop("_path"), frame["line"]
    module_globals, fallback = frame.pop("_globals"), frame.pop("_fallback")
    lines = linecache.getlines(path, module_globals) if line else []
    if line and 0 < line <= len(lines):
        first, last = max(1, line - around), min(len(lines), line + around)
        text = [lines[i - 1].rstrip("\r\n") for i in range(first, last + 1)]
    elif line and fallback:  # source not readable ("<string>"): a SyntaxError still carries its line
        first, text = line, [fallback.rstrip("\r\n")]
    else:
        first, text = line, []
    frame["context_start"] = first
    frame["context"] = [clip(t, LINE_BYTES) for t in text]
    frame["file"] = clip(frame["file"], PATH_BYTES, keep="tail")
    frame["function"] = clip(frame["function"], NAME_BYTES)


def extract(exc: BaseException, app_dir: Path, with_locals: bool = False) -> tuple[list[dict], int]:
    """(frames, outermost first, the failing one marked; how many were left out to cap the size).
    `with_locals`: the user's frames carry their local variables (see local_values)."""
    linecache.checkcache()  # a file edited since it was last read must be read again
    tb = exc.__traceback__
    user_tb = from_user_code(tb, app_dir)
    frames = _traceback_frames(user_tb or (None if isinstance(exc, SyntaxError) else tb), app_dir, with_locals)
    if isinstance(exc, SyntaxError) and exc.filename:
        frames.append(_syntax_error_frame(exc, app_dir))
    if not frames:
        return [], 0
    user = [i for i, f in enumerate(frames) if f["user"]]
    # The innermost of the user's frames: for a SyntaxError, its own line (when in the user's files).
    failing = user[-1] if user else len(frames) - 1
    frames[failing]["failing"] = True
    kept = _select(frames, failing)
    full = _with_context(frames, kept, failing)
    for index in kept:
        _fill_context(frames[index], CONTEXT if index in full else 0)
    return [frames[i] for i in kept], len(frames) - len(kept)
