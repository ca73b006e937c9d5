"""The typed events the generation state machine (generations.py) reacts to.

The reload server turns what it hears (the watcher's batches, worker reports, process exits, a finished
install, a stop signal) into these, so the machine never parses strings or dicts and can be driven by
tests with no processes at all.
"""

from __future__ import annotations

from dataclasses import dataclass

from unstuck.errors.failure import Failure


@dataclass(frozen=True)
class Changes:
    """One batch from the watcher. The facts the settle policy needs are read from the filesystem by the
    reload server when the batch arrives, so the machine stays pure."""

    paths: frozenset[tuple[str, str]]  # (change kind name: added/modified/deleted, path relative to APP_DIR)
    dependencies: bool = False  # a dependency or environment file is among them (requirements, pyproject...)
    code: bool = True  # something else is among them too (the app's code, templates, settings)
    missing: bool = False  # a changed file is gone (vim renames it away before writing the new one)
    new_dir: bool = False  # a directory appeared (its files may raise no events of their own)
    saved_at: float | None = None  # newest mtime of the changed files, on the monotonic clock
    seen_at: float | None = None  # when the watcher delivered the batch


@dataclass(frozen=True)
class Started:
    """The generation's process exists (forked by the warm process, or spawned)."""

    gen: int
    pid: int
    at: float
    forked: bool
    source: str = ""  # what the warm process made it from: "app layer", "spare" or "fork" (none: spawned)


@dataclass(frozen=True)
class Imported:
    """The app module was imported (user code ran); startup (lifespan) follows."""

    gen: int
    at: float


@dataclass(frozen=True)
class Ready:
    """The generation accepts connections with the app loaded."""

    gen: int
    at: float
    app: dict | None = None  # what was served: import string, how it was found, ASGI/WSGI


@dataclass(frozen=True)
class Failed:
    """The generation cannot serve the app and serves the error page instead (or is the error responder
    reporting that it accepts connections)."""

    gen: int
    failure: Failure
    at: float
    app: dict | None = None  # what it tried to serve, when that was found
    # Made by a fast path (forked from the warm process, its spare or its app layer), it serves nothing and
    # exits: the same saved code is tried in a fresh interpreter before the failure is shown (issue 18).
    held: bool = False
    source: str = ""  # with held: what the warm process made it from ("spare", "app layer", "fork")


@dataclass(frozen=True)
class Served:
    """The generation answered its first request."""

    gen: int
    at: float


@dataclass(frozen=True)
class Uses:
    """The third-party modules the generation has imported so far (its first request's lazy imports
    included): what the warm process may preload. Reported apart from, and after, ready and served:
    listing them touches every module object, which in a forked child costs milliseconds of copy-on-write
    that must not stand between a save and its first answer."""

    gen: int
    modules: tuple[str, ...]
    # The user's own modules (name, file), in the order they were imported: what the warm process's app
    # layer may import ahead (app_layer.py).
    app_modules: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Exited:
    """The generation's process is gone and every report it wrote has been handled."""

    gen: int
    code: int  # as subprocess reports it: < 0 means killed by signal -code


@dataclass(frozen=True)
class Installed:
    ok: bool
    files: tuple[str, ...]
    seconds: float
    error: str = ""  # the installer's error lines
    summary: str = ""  # one line: what failed
    had_env: bool = True  # an earlier install is in place (and keeps serving when this one failed)
    warning: str = ""  # installed, but the project itself is not (dependencies.Outcome.warning)


@dataclass(frozen=True)
class StopRequested:
    signum: int = 15
