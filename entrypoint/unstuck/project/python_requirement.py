"""Does this image's Python fit what the project asks for? Checked before anything is installed or imported.

A project that needs a newer Python otherwise fails deep inside its own code (`SyntaxError: multiple
exception types must be parenthesized`) after a long install, and nothing says the interpreter is the
problem. This reads what the project declares (pyproject.toml's `requires-python`, uv.lock's, and
`.python-version`) and returns one line naming the file, what it asks for, what runs here and the
BASE_IMAGE to rebuild with. Specifiers are PEP 440, checked by `packaging` as pip and uv do.

Only the project's own declarations count: those in APP_DIR and in its immediate subdirectories (the
project is mounted at /workspace or at /workspace/app). A pyproject.toml deeper down belongs to a
library or a fixture, and this runs for every app generation, so it must not walk the whole tree.
"""

from __future__ import annotations

import os
import re
import sys
import tomllib
from pathlib import Path

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import Version

# unstuck's own runtime needs 3.11+; the upper end only bounds the search for a version to suggest.
LOWEST_MINOR, HIGHEST_MINOR = 11, 30
# Patch releases tried when no image of a minor's newest patch fits (a spec such as <3.11.5).
PATCHES = range(99, -1, -1)
# `.python-version` as uv and pyenv write it: 3.12, 3.12.1, cpython@3.12, cpython-3.12.1, 3.13t.
_PYTHON_VERSION_RE = re.compile(r"^(?:[a-z]+[@-])?(\d+)\.(\d+)(?:\.(\d+))?")


def running() -> Version:
    """This interpreter's release (3.11.2): requires-python is about the language level, so a pre-release
    of 3.14 counts as 3.14."""
    return Version("{}.{}.{}".format(*sys.version_info[:3]))


def image_for(spec: SpecifierSet) -> str | None:
    """The lowest official image whose Python satisfies `spec`: python:3.M-slim (which carries 3.M's newest
    patch) when the newest patch fits, else python:3.M.P-slim; None when no supported Python does."""
    for minor in range(LOWEST_MINOR, HIGHEST_MINOR + 1):
        if spec.contains(f"3.{minor}.{PATCHES[0]}"):
            return f"python:3.{minor}-slim"
        patch = next((p for p in PATCHES if spec.contains(f"3.{minor}.{p}")), None)
        if patch is not None:
            return f"python:3.{minor}.{patch}-slim"
    return None


def check_spec(source: str, raw: str, here: Version | None = None) -> str | None:
    """One line when `raw` (a requires-python value declared in `source`) excludes this Python, else None."""
    here = here or running()
    try:
        spec = SpecifierSet(raw)
    except InvalidSpecifier:
        return (f"{source}: requires-python = {raw!r} is not a valid version specifier; "
                "fix it, e.g. requires-python = \">=3.11\"")
    if spec.contains(here, prereleases=True):
        return None
    image = image_for(spec)
    if image:
        return f"{source} requires Python {raw}; this image runs {here}: rebuild with BASE_IMAGE={image}"
    if any(spec.contains(f"3.{m}.{p}") for m in range(LOWEST_MINOR) for p in (0, 99)):
        return (f"{source} requires Python {raw}; this image runs {here} and unstuck needs Python "
                f"3.{LOWEST_MINOR} or newer: widen requires-python to allow it")
    return f"{source} requires Python {raw}, which no Python release satisfies; fix requires-python"


def check_pinned(source: str, text: str, here: Version | None = None) -> str | None:
    """`.python-version` names a version, not a range: its major.minor must be this one's. A patch pin is
    not enforced (patch releases keep the language and the ABI), nor anything not a version ("system")."""
    here = here or running()
    line = next((ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")), "")
    match = _PYTHON_VERSION_RE.match(line)
    if not match:
        return None
    wanted = (int(match.group(1)), int(match.group(2)))
    if wanted == (here.major, here.minor):
        return None
    return (f"{source} asks for Python {line}; this image runs {here}: "
            f"rebuild with BASE_IMAGE=python:{wanted[0]}.{wanted[1]}-slim")


def _requires_python(path: Path) -> str | None:
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None  # a file being saved or broken: the install reports it, the app may not need it
    if path.name == "uv.lock":
        value = data.get("requires-python")
    else:
        value = data.get("project", {}).get("requires-python") if isinstance(data.get("project"), dict) else None
    return value if isinstance(value, str) else None


def project_dirs(app_dir: Path) -> list[Path]:
    """APP_DIR and its immediate subdirectories (hidden ones aside), in that order."""
    try:
        subdirs = sorted(e.path for e in os.scandir(app_dir) if e.is_dir() and not e.name.startswith("."))
    except OSError:
        subdirs = []
    return [app_dir, *map(Path, subdirs)]


def preflight(app_dir: Path) -> str | None:
    """A one-line message when this Python does not fit the project's declarations, else None."""
    here = running()
    for directory in project_dirs(app_dir):
        for name in ("pyproject.toml", "uv.lock"):
            path = directory / name
            raw = _requires_python(path) if path.is_file() else None
            if raw is not None:
                problem = check_spec(os.path.relpath(path, app_dir), raw, here)
                if problem:
                    return problem
        pinned = directory / ".python-version"
        try:
            problem = check_pinned(os.path.relpath(pinned, app_dir), pinned.read_text(), here)
        except (OSError, UnicodeDecodeError):
            continue
        if problem:
            return problem
    return None
