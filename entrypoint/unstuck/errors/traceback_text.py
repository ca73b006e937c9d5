"""Find the exception and the user's file:line in a traceback printed by another process.

A Procfile worker (celery, rq, a script) prints its traceback to its output and exits; there is no
exception object to inspect, only the text. Python's traceback format is stable: frames are
`  File "path", line N, in name`, a SyntaxError adds the file and line of the bad source, and the last
unindented line is `Type: message`.
"""

from __future__ import annotations

import re

from unstuck.errors.failure import Failure, display_path
from unstuck.user_files import is_user_file

_FRAME = re.compile(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+)')
_EXC = re.compile(r"^(?P<type>[A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Warning|Fault|Failure)?)(?::\s?(?P<msg>.*))?$")
START = "Traceback (most recent call last):"


def parse(lines: list[str], app_dir) -> Failure | None:
    """The last traceback in `lines` as a Failure (phase "crash"), or None if there is none."""
    starts = [i for i, line in enumerate(lines) if line.strip() == START]
    if not starts:
        return None
    block = lines[starts[-1]:]
    frames = [(m.group("file"), int(m.group("line"))) for m in (_FRAME.match(line) for line in block) if m]
    exc_type, message = "Error", ""
    for line in reversed(block):
        if line and not line[0].isspace() and line.strip() != START:
            match = _EXC.match(line.strip())
            if match:
                exc_type, message = match.group("type").rsplit(".", 1)[-1], (match.group("msg") or "").strip()
                break
    user = [f for f in frames if is_user_file(f[0], app_dir)]
    file, line = (user or frames or [(None, None)])[-1]
    text = "\n".join(block[-60:])
    return Failure("crash", exc_type, message, display_path(file, app_dir) if file else None, line, text)

