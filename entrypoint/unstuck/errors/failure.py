"""Describe why the app cannot serve: exception, the user's file and line, the stack, a hint.

Tracebacks of a failed import mostly show importlib and unstuck frames; the frame that matters to the
user is the last one inside their project, which is what the one-line log and the error page lead with.
A Failure travels as JSON (pipe, command line, one 64 KB forkserver message): its text is capped by
encoded size here and in frames.py, so `to_dict()` stays under ~24 KB whatever the exception.
"""

from __future__ import annotations

import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path

from unstuck.errors.frames import display_path, extract, from_user_code
from unstuck.sizes import clip, clip_middle

MESSAGE_BYTES = 1500
TRACEBACK_BYTES = 5000
FILE_BYTES = 160
HINT_BYTES = 600


@dataclass
class Failure:
    phase: str  # "import", "startup" (lifespan), "crash", "starting", "request" (raised by a request handler)
    exc_type: str
    message: str
    file: str | None = None
    line: int | None = None
    traceback: str = ""
    frames: list[dict] = field(default_factory=list)  # see frames.py
    frames_omitted: int = 0
    hint: str | None = None  # what to do about it, e.g. which file to declare a missing package in
    request: str | None = None  # phase "request": the request line that failed, "GET /orders?page=2"

    def __post_init__(self) -> None:
        # Whoever builds a Failure (here, the worker, the reloader), it stays within its size budget.
        self.message = clip(self.message, MESSAGE_BYTES)
        self.traceback = clip_middle(self.traceback or "", TRACEBACK_BYTES)
        self.file = clip(self.file, FILE_BYTES, keep="tail")
        self.hint = clip(self.hint, HINT_BYTES)
        self.request = clip(self.request, FILE_BYTES)
        self.frames = self.frames or []
        self.frames_omitted = self.frames_omitted or 0

    def where(self) -> str:
        if self.file is None:
            return ""
        return f"{self.file}:{self.line}" if self.line else self.file

    def headline(self) -> str:
        where = self.where()
        text = f"{self.exc_type}: {self.message}" if self.message else self.exc_type
        return f"{text} ({where})" if where else text

    def failing_frame(self) -> dict | None:
        return next((f for f in self.frames if f.get("failing")), None)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Failure":
        return cls(**{k: data.get(k) for k in cls.__dataclass_fields__})


def _user_traceback(exc: BaseException, app_dir: Path) -> str:
    """The traceback from the first frame in the user's code on; all of it when no frame is the user's,
    except for a SyntaxError, whose own text (file, line, caret) is what matters."""
    tb = from_user_code(exc.__traceback__, app_dir)
    if tb is None and not isinstance(exc, SyntaxError):
        tb = exc.__traceback__
    return "".join(traceback.format_exception(type(exc), exc, tb))


def from_exception(exc: BaseException, phase: str, app_dir: Path, *, request: str | None = None,
                   with_locals: bool = False) -> Failure:
    frames, omitted = extract(exc, app_dir, with_locals)
    failing = next((f for f in frames if f["failing"]), None)
    file, line = (failing["file"], failing["line"]) if failing else (None, None)
    message = (exc.msg or str(exc)) if isinstance(exc, SyntaxError) else str(exc)
    from unstuck.errors import hints  # here, not at the top: packaging's import is paid only when the app fails

    hint = hints.for_exception(exc, app_dir, near=file if failing and failing["user"] else None)
    return Failure(phase, type(exc).__name__, message, file, line, _user_traceback(exc, app_dir),
                   frames, omitted, hint, request)
