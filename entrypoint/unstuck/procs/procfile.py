"""Read a Procfile (the format of Heroku, foreman and honcho: `name: command`, one per line).

The `web` entry is what unstuck already serves. `release` is what Heroku runs once per release (its
migrations): here it runs at start and after each dependency install, before the workers (re)start, and
is never restarted (proc_plan.py). Every other entry is a worker that runs beside the web app.
honcho's own parser is the reference (its regex, comments and blank lines); it is a few lines, and
depending on honcho for them would bring its CLI into the image, so they are restated here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

# honcho.environ.PROCFILE_LINE: a name of letters, digits, _ and -, a colon, the command.
_LINE = re.compile(r"^([A-Za-z0-9_-]+):\s*(.+)$")
WEB = "web"
RELEASE = "release"


class ProcfileError(ValueError):
    """str() is one line: where the Procfile is wrong and how to fix it."""


@dataclass(frozen=True)
class Proc:
    name: str
    command: str


def parse(text: str, where: str = "Procfile") -> list[Proc]:
    procs: dict[str, Proc] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.match(line)
        if match is None:
            raise ProcfileError(f"{where}:{number}: {line[:60]!r} is not 'name: command'; "
                                "names are letters, digits, '_' and '-', e.g. 'worker: celery -A app worker'")
        name, command = match.group(1), match.group(2).strip()
        if name in procs:
            raise ProcfileError(f"{where}:{number}: {name!r} is defined twice; give each process its own name")
        procs[name] = Proc(name, command)
    return list(procs.values())


def read(path: Path) -> list[Proc]:
    """Every entry of the Procfile at `path`; none when there is no Procfile."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise ProcfileError(f"{path}: cannot be read ({exc.strerror}); make it readable by uid 1000") from None
    return parse(text, str(path))


def workers_of(procs: list[Proc]) -> list[Proc]:
    """The entries that run beside the web app, for as long as it runs."""
    return [proc for proc in procs if proc.name not in (WEB, RELEASE)]


def release_of(procs: list[Proc]) -> Proc | None:
    return next((proc for proc in procs if proc.name == RELEASE), None)


def workers(path: Path) -> list[Proc]:
    return workers_of(read(path))
