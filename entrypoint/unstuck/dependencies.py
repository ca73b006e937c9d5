"""Install the app's dependencies into the running container's environment when their files change.

Adding a package otherwise means rebuilding the image. pip does the work; this decides what to install
(requirements*.txt as is, pyproject.toml's [project] dependencies), streams pip's output into the log,
remembers what was installed (by content hash, including what the image was built with), and reports
success or pip's error to the reloader, which keeps serving with the previous environment on failure.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import threading
import time
import tomllib
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path

from watchfiles import DefaultFilter

from unstuck.logs import log

FILES = ("requirements*.txt", "pyproject.toml")
# The directories the watcher never looks into either (watchfiles' defaults, and `venv`): not walked.
SKIP_DIRS = set(DefaultFilter.ignore_dirs) | {"venv"}
STAMPS = Path(sys.prefix) / ".unstuck-installed"  # one empty file per installed content hash


@dataclass
class Outcome:
    ok: bool
    files: list[str]
    seconds: float
    error: str = ""


def is_dependency_file(path: str) -> bool:
    return any(fnmatch(Path(path).name, pattern) for pattern in FILES)


def find(root: Path) -> list[Path]:
    found = []
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = [d for d in subdirs if d not in SKIP_DIRS]
        found += [Path(directory, name) for name in files if is_dependency_file(name)]
    return sorted(found)


def requirements(path: Path) -> list[str] | None:
    """pip arguments for one file; None when it declares nothing to install."""
    if path.name == "pyproject.toml":
        try:
            deps = tomllib.loads(path.read_text()).get("project", {}).get("dependencies", [])
        except (OSError, tomllib.TOMLDecodeError):
            return None
        return list(deps) or None
    return ["-r", str(path)]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def pending(root: Path) -> list[Path]:
    """Dependency files whose current content has not been installed yet."""
    out = []
    for path in find(root):
        try:
            if requirements(path) and not (STAMPS / digest(path)).exists():
                out.append(path)
        except OSError:
            continue
    return out


def install(paths: list[Path], root: Path, on_done) -> threading.Thread:
    """pip install in a thread; on_done(Outcome) when finished."""

    def run() -> None:
        started = time.monotonic()
        names = [str(p.relative_to(root)) for p in paths]
        args = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--no-input",
                "--progress-bar", "off"]
        for path in paths:
            args += requirements(path) or []
        log.info("installing dependencies from %s ...", ", ".join(names))
        tail: list[str] = []
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=str(root))
        for line in proc.stdout:
            line = line.rstrip()
            if line:
                log.info("pip: %s", line)
                tail = (tail + [line])[-12:]
        code = proc.wait()
        seconds = time.monotonic() - started
        if code == 0:
            STAMPS.mkdir(exist_ok=True)
            for path in paths:
                try:
                    (STAMPS / digest(path)).touch()
                except OSError:
                    pass
            on_done(Outcome(True, names, seconds))
        else:
            errors = [t for t in tail if "ERROR" in t] or tail[-3:]
            on_done(Outcome(False, names, seconds, "\n".join(errors)))

    thread = threading.Thread(target=run, daemon=True, name="pip")
    thread.start()
    return thread
