"""Example paths for the sync tests: what must never be copied into the container (everything unstuck's
watcher ignores) and what must arrive. Built from the watcher's own lists, so a name added there fails the
sync tests until .dockerignore and compose.yaml's develop.watch skip it too."""

from watchfiles import DefaultFilter

from unstuck.config import DEFAULT_IGNORE


def example_name(pattern: str) -> str:
    return pattern.replace("*", "x").replace("?", "p")


_LITERAL = [p for p in DEFAULT_IGNORE if not any(c in p for c in "*?[")]
_WILDCARD = [p for p in DEFAULT_IGNORE if p not in _LITERAL]

# Directories the watcher skips (watchfiles' list, and UNSTUCK_IGNORE's plain names such as venv), with a
# file inside; and files it skips. None of these collide, so all of them can be written in one directory.
NOISE_DIRS = sorted(f"{name}/x.py" for name in [*DefaultFilter.ignore_dirs, *_LITERAL])
NOISE_FILES = sorted({
    *(example_name(p) for p in _WILDCARD),
    # one example of each of watchfiles' DefaultFilter.ignore_entity_patterns
    "x.pyc", "x.pyo", "x.pyd", "main.py.___jb_tmp___", ".main.py.swo", "main.py~", ".#main.py", ".DS_Store",
    "flycheck_main.py",
})
# Every form, for checks that write nothing: the plain names as files, the patterns as directories too.
NOISE = sorted({*NOISE_DIRS, *NOISE_FILES, *_LITERAL, *(f"{example_name(p)}/x.py" for p in _WILDCARD)})

# What must arrive: code, templates, dependency files, and data the app reads (unwatched but needed).
KEPT = ["main.py", "pkg/__init__.py", "requirements.txt", "requirements-dev.txt", "pyproject.toml", ".env",
        "templates/index.html", "static/app.js", "data.csv"]
