"""Describe why the app cannot serve: exception, the user's file and line, traceback.

Tracebacks of a failed import mostly show importlib and unstuck frames; the frame that matters to the
user is the last one inside their project, which is what the one-line log and the error page lead with.
"""

from __future__ import annotations

import os
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass
class Failure:
    phase: str  # "import", "startup" (lifespan), "crash", "starting"
    exc_type: str
    message: str
    file: str | None = None
    line: int | None = None
    traceback: str = ""

    def where(self) -> str:
        if self.file is None:
            return ""
        return f"{self.file}:{self.line}" if self.line else self.file

    def headline(self) -> str:
        where = self.where()
        text = f"{self.exc_type}: {self.message}" if self.message else self.exc_type
        return f"{text} ({where})" if where else text

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Failure":
        return cls(**{k: data.get(k) for k in cls.__dataclass_fields__})


def display_path(path: str, app_dir: Path) -> str:
    try:
        return os.path.relpath(path, app_dir) if Path(path).is_relative_to(app_dir) else path
    except ValueError:
        return path


def is_user_file(path: str, app_dir: Path) -> bool:
    # The user's code lives under APP_DIR; installed packages, unstuck and "<frozen ...>" never count.
    if not os.path.isabs(path):
        return False
    try:
        inside = Path(path).resolve().is_relative_to(app_dir.resolve())
    except (OSError, ValueError):
        return False
    return inside and "site-packages" not in path


def _user_traceback(exc: BaseException, app_dir: Path) -> str:
    """The traceback from the first frame in the user's code on: importlib's and unstuck's own frames
    above it say nothing about the user's mistake."""
    tb = exc.__traceback__
    while tb is not None and not is_user_file(tb.tb_frame.f_code.co_filename, app_dir):
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb))


def from_exception(exc: BaseException, phase: str, app_dir: Path) -> Failure:
    tb_text = _user_traceback(exc, app_dir)
    if isinstance(exc, SyntaxError) and exc.filename:
        # The failing line is in the file being compiled, not in any frame of the traceback.
        msg = exc.msg or str(exc)
        return Failure(phase, type(exc).__name__, msg, display_path(exc.filename, app_dir), exc.lineno, tb_text)
    frames = traceback.extract_tb(exc.__traceback__)
    user = [f for f in frames if is_user_file(f.filename, app_dir)]
    frame = user[-1] if user else (frames[-1] if frames else None)
    file = display_path(frame.filename, app_dir) if frame else None
    return Failure(phase, type(exc).__name__, str(exc), file, frame.lineno if frame else None, tb_text)
