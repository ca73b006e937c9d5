"""What the warm process imports on a project's very first start, before it knows what the app uses.

The heavy, popular libraries, if installed: the first generation (forked once the warm process is ready)
and the first reloads then pay only for what the app uses beyond them. They are never written to the
preload file: the next start imports only what the app was seen to use.

Two of them take most of a second to import (pandas, numpy): they come after "ready", so that the first
generation is not kept waiting for them, and only if the project's own sources import them. An image
often has them installed for another service or a notebook; importing them for a web app that never does
cost the warm process 0.8 s of a core, blocked every fork asked of it meanwhile (a save in the first
second after the first page), and delayed the app layer (so the first reload of a larger app went through
the plain spare).
"""

from __future__ import annotations

import os
import re
import time
from fnmatch import fnmatch
from pathlib import Path

SEED = ("fastapi", "starlette", "pydantic", "flask", "django", "litestar", "sqlalchemy", "sqlmodel", "jinja2",
        "httpx", "requests", "numpy", "pandas")
IMPORTED_AFTER_READY = frozenset({"numpy", "pandas"})

# Directories that hold no source of the project's own (dependencies, caches, tool state).
_NOT_SOURCES = ("node_modules", "__pycache__", "site-packages", "venv", ".*")
# The scan reads every .py file of the project; a very large tree is cut short, and then every name is
# assumed used (the import costs what it did before this scan existed).
SCAN_BUDGET_S = 0.3


def installed(names=SEED) -> set[str]:
    import importlib.util

    found = set()
    for name in names:
        try:
            if importlib.util.find_spec(name) is not None:  # looks, does not import
                found.add(name)
        except (ImportError, ValueError):
            continue
    return found


def imported_by_sources(app_dir: Path, names, ignore: tuple[str, ...] = (), budget_s: float = SCAN_BUDGET_S,
                        clock=time.monotonic) -> set[str]:
    """Those of the top-level module `names` that an `import` or `from` line of a .py file under `app_dir`
    names; all of them if the tree takes longer than `budget_s` to read."""
    names = set(names)
    if not names:
        return set()
    line = re.compile(rb"^[ \t]*(?:import|from)[ \t]+(" + b"|".join(re.escape(n.encode()) for n in sorted(names))
                      + rb")\b", re.MULTILINE)
    deadline = clock() + budget_s
    found: set[str] = set()
    for directory, subdirs, files in os.walk(app_dir):
        subdirs[:] = [d for d in subdirs if not any(fnmatch(d, p) for p in (*_NOT_SOURCES, *ignore))]
        for file in files:
            if not file.endswith(".py"):
                continue
            if clock() > deadline:
                return names
            try:
                with open(os.path.join(directory, file), "rb") as f:
                    found.update(m.decode() for m in line.findall(f.read()))
            except OSError:
                continue
            if found == names:
                return found
    return found
