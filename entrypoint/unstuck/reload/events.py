"""The reload server's one vocabulary: everything that reaches its queue, and what its machine asks for.

Three kinds, all typed, frozen dataclasses:
- machine events: what the generation state machine (generations.py) reacts to (a change batch, a worker's
  phase, an exit, a finished install, a stop), so that the machine never parses strings or dicts and can
  be driven by tests with no processes at all;
- shell events: what only the process-owning shell (reloader.py) handles (a report line read, a pipe
  closed, the warm process's messages, the watcher's state, the release's exit); the shell turns the ones
  the machine must hear into machine events;
- actions: what the machine's handlers return for the shell to carry out (spawn, signal, install ...).

The wire messages (wire.py) become events in one place per protocol: `from_report` (worker reports) and
`from_warm` (the warm process's control messages). Each handler is found in a table keyed by event type
(Generations.HANDLERS, Reloader.HANDLERS), never in an isinstance ladder.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from unstuck import wire
from unstuck.errors.failure import Failure

# -- machine events --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Changes:
    """One batch from the watcher. The facts the settle policy needs are read from the filesystem by the
    reload server when the batch arrives, so the machine stays pure."""

    paths: frozenset[tuple[str, str]]  # (change kind name: added/modified/deleted, path relative to APP_DIR)
    dependencies: bool = False  # a dependency or environment file is among them (requirements, pyproject...)
    code: bool = True  # something else is among them too (the app's code, templates, settings)
    # Changed files read as a save still under way: gone (vim renames the file away before writing the new
    # one) or empty (an in-place save truncates, then writes: a writer descheduled between the two is seen in
    # two batches, the first of them an empty file).
    half_done: frozenset[str] = frozenset()
    new_dir: bool = False  # a directory appeared (its files may raise no events of their own)
    saved_at: float | None = None  # newest mtime of the changed files, on the monotonic clock
    seen_at: float | None = None  # when the watcher delivered the batch
    # (path, what it read as: watching/fingerprint.py, None when unknown) for a batch of a few files
    fingerprints: frozenset[tuple[str, object]] = frozenset()


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
    # The user's own modules (name, file, who started the import, whether the framework did:
    # worker.modules_by_origin), in the order they were imported: what the warm process's app layer may import
    # ahead (app_layer.py).
    app_modules: tuple[tuple, ...] = ()


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


@dataclass(frozen=True)
class FastPathNarrowed:
    """The shell narrowed a fast path after a Distrust action; `note` says what was wrong and what was done."""

    note: str


# -- shell events ------------------------------------------------------------------------------------------------
# `child` is the reload server's Child (reloader.py), `warm` a WarmProcess (warm_process_client.py): the shell
# keys its books by them; the machine never sees these events.

@dataclass(frozen=True)
class Report:
    """One report line of a generation, decoded (wire.Started ... wire.Uses)."""

    child: Any
    message: Any


@dataclass(frozen=True)
class ReportsClosed:
    """A forked generation's report pipe reached its end (its exit comes from the warm process)."""

    child: Any


@dataclass(frozen=True)
class SpawnedExited:
    """A spawned generation's report pipe reached its end and the process was waited for."""

    child: Any
    code: int


@dataclass(frozen=True)
class WarmReady:
    """The warm process has imported its modules and forks from now on."""

    warm: Any
    message: wire.WarmStarted


@dataclass(frozen=True)
class WarmForked:
    """A generation was forked for fork request `request` (`pidfd` None without pidfd_open)."""

    warm: Any
    request: int
    pid: int
    pidfd: int | None
    source: str = ""  # "app layer", "spare" or "fork"


@dataclass(frozen=True)
class WarmChildExited:
    """A generation the warm process forked exited (code as subprocess reports it)."""

    warm: Any
    pid: int
    code: int


@dataclass(frozen=True)
class WarmLayer:
    """The warm process's app layer is ready, or cannot be used (app_layer.py)."""

    warm: Any
    message: wire.LayerState


@dataclass(frozen=True)
class WarmExited:
    """The warm process is gone (the generations it forked died with it)."""

    warm: Any


@dataclass(frozen=True)
class WatcherState:
    """The watcher's state changed (for the status)."""

    state: dict


@dataclass(frozen=True)
class ReleaseExited:
    """The Procfile's release has exited (proc_release.py, on its own thread)."""

    code: int
    seconds: float
    error: str | None


# -- where wire messages become events ---------------------------------------------------------------------------

_FROM_REPORT = {
    wire.Started: lambda gen, m, pid, forked: Started(gen, pid or m.pid or 0, m.at, forked=forked,
                                                     source=m.source or ""),
    wire.Imported: lambda gen, m, pid, forked: Imported(gen, m.at),
    wire.Ready: lambda gen, m, pid, forked: Ready(gen, m.at, m.app),
    wire.Failed: lambda gen, m, pid, forked: Failed(gen, Failure.from_dict(m.failure or {}), m.at, m.app,
                                                   held=bool(m.held), source=m.source or ""),
    wire.Served: lambda gen, m, pid, forked: Served(gen, m.at),
    wire.Uses: lambda gen, m, pid, forked: Uses(gen, tuple(m.modules or ()),
                                                tuple(tuple(entry) for entry in m.app_modules or ())),
}


def from_report(gen: int, message, pid: int | None, forked: bool):
    """The machine event for generation `gen`'s report. `pid`: what its starter said (the warm process's word
    wins over the report's own); `forked`: made by the warm process (not spawned)."""
    return _FROM_REPORT[type(message)](gen, message, pid, forked)


_FROM_WARM = {
    wire.WarmStarted: lambda warm, m, pidfd: WarmReady(warm, m),
    wire.Forked: lambda warm, m, pidfd: WarmForked(warm, m.id, m.pid, pidfd, m.source),
    wire.ChildExit: lambda warm, m, pidfd: WarmChildExited(warm, m.pid, m.code),
    wire.LayerState: lambda warm, m, pidfd: WarmLayer(warm, m),
}


def from_warm(warm, message, pidfd: int | None = None):
    """The shell event for a message of the warm process `warm`; None for those that are only logged
    (wire.Preloaded, wire.SeedsSkipped)."""
    make = _FROM_WARM.get(type(message))
    return make(warm, message, pidfd) if make is not None else None


# -- actions: what the machine asks of the world -----------------------------------------------------------------
# `gen` is a generations.Generation.

@dataclass(frozen=True)
class Spawn:
    """Start the generation's process (forked by the warm process, or a fresh interpreter)."""

    gen: Any


@dataclass(frozen=True)
class Signal:
    gen: Any
    signum: int


@dataclass(frozen=True)
class Serve:
    """`gen` answers from now on (its predecessor hands it its idle connections); None: nobody (stopping)."""

    gen: Any


@dataclass(frozen=True)
class Install:
    """Install the pending dependency files; an Installed event comes back."""


@dataclass(frozen=True)
class LearnModules:
    modules: tuple[str, ...]
    app_modules: tuple[tuple, ...] = ()  # (name, file, importer, framework): worker.modules_by_origin


@dataclass(frozen=True)
class RebuildWarm:
    """A warm process with fresh imports of the same modules (after an install they may be other versions)."""


@dataclass(frozen=True)
class PrepareLayer:
    """A reload is done: the warm process may build its app layer."""


@dataclass(frozen=True)
class RestartProcs:
    reason: str


@dataclass(frozen=True)
class Distrust:
    """A fast path (`source`) showed a failure a fresh interpreter does not: narrow it, and say what was done
    with a FastPathNarrowed event whose note starts with `note`."""

    source: str
    note: str
