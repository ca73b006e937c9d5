"""Read a Procfile (the format of Heroku, foreman and honcho: `name: command`, one per line).

The `web` entry is what unstuck already serves; every other entry is a worker that runs beside it.
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


def workers(path: Path) -> list[Proc]:
    """The entries to run beside the web app; none when there is no Procfile."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise ProcfileError(f"{path}: cannot be read ({exc.strerror}); make it readable by uid 1000") from None
    return [proc for proc in parse(text, str(path)) if proc.name != WEB]
