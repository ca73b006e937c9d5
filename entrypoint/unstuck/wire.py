"""What crosses the two wires between unstuck's processes, as dataclasses both ends use.

- Worker reports: a generation -> the reload server, one JSON object per line on its report pipe
  (worker.Reporter writes them; reloader reads them and events.from_report makes them events).
- Warm process control: one JSON object per SOCK_SEQPACKET packet, requests from the reload server
  (warm_process_client) to the warm process (warm_process), and the warm process's messages back
  (events.from_warm makes them events).

On the wire each message is its fields plus a tag naming its type: "event" for reports and the warm process's
messages, "op" for requests. Both ends build and read the same classes, and decoding is strict (an unknown or
missing field raises): a field renamed on one end cannot pass for a field that is simply absent, as it did
with `dict.get`. A Failure crosses as Failure.to_dict(). Nothing here imports more than the standard library:
every process (the warm process before it forks, a generation) loads it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields


# -- worker reports (a generation -> the reload server) -------------------------------------------------------

@dataclass(frozen=True)
class Started:
    """It runs (the reload's "forked" phase), with its own pid: the warm process's word may come later."""
    at: float
    pid: int
    # What the warm process made it from ("app layer", "spare", "fork"; empty: a fresh interpreter). Said by
    # the worker itself, on the pipe its "ready" comes on: the warm process's word comes on another one.
    source: str = ""


@dataclass(frozen=True)
class Imported:
    """The app module is imported; its startup (lifespan) follows."""
    at: float


@dataclass(frozen=True)
class Ready:
    """It accepts connections with the app loaded."""
    at: float
    import_s: float
    app: dict | None = None  # loading.Loaded.info: what was served and how it was found


@dataclass(frozen=True)
class Failed:
    """It cannot serve the app: it serves the error page (accepting connections now), or with `held` nothing
    at all (a fast path's failure, to be checked in a fresh interpreter first: worker.held_for_checking)."""
    failure: dict  # Failure.to_dict()
    at: float
    app: dict | None = None
    held: bool = False
    source: str = ""  # with held: what the warm process made it from ("spare", "app layer", "fork")


@dataclass(frozen=True)
class Served:
    """It answered its first request."""
    at: float


@dataclass(frozen=True)
class Uses:
    """The third-party modules it imported, in order, and the user's own (worker.modules_by_origin: name, file,
    who started the import, whether the framework did)."""
    modules: list[str]
    app_modules: list[tuple[str, str, str, bool]]


# -- warm process control: requests (the reload server -> the warm process) ---------------------------------

@dataclass(frozen=True)
class Fork:
    """Fork a generation that reports on the pipe attached to this packet."""
    id: int
    failure: dict | None  # serve this failure (Failure.to_dict()) instead of the app
    changes: list[list[str]] | None = None  # the saves that caused it: [kind, absolute path]; None: no save


@dataclass(frozen=True)
class Preload:
    """Import what the preload file now lists too, between forks."""


@dataclass(frozen=True)
class BuildLayer:
    """A reload is done: build the app layer (of the modules app_layer.list_file lists), unless the one there
    already holds what it would."""


@dataclass(frozen=True)
class NoLayer:
    """A layer served a failure a fresh interpreter did not show: no app layer from now on."""


@dataclass(frozen=True)
class NoOrmAhead:
    """A worker resumed from a layer that configured SQLAlchemy's mappers could not prove them a fresh interpreter's
    (orm_ahead.py): layers configure them no more."""


# -- warm process control: its messages (the warm process -> the reload server) --------------------------------

@dataclass(frozen=True)
class WarmStarted:
    """It has imported its modules and forks from now on."""
    modules: int
    warmed: list[str]
    stopped_at: str | None  # the listed module whose import failed there (nothing listed after it is imported)
    seconds: float


@dataclass(frozen=True)
class Forked:
    """A generation was forked for request `id` (a pidfd of it attached when the kernel has pidfd_open)."""
    id: int
    pid: int
    source: str  # "app layer", "spare" or "fork"


@dataclass(frozen=True)
class ChildExit:
    """A generation it forked exited; `code` as subprocess reports it (< 0: killed by signal -code)."""
    pid: int
    code: int


@dataclass(frozen=True)
class LayerState:
    """Its app layer is ready (holding `files` of the app's files, imported in `seconds`; `copies`: it forks its
    copy when it serves a save; `stops_at`: the module its load of the app stopped before, "" if none (the whole
    app loaded), None if it did not load the app; `mappers`: what it configured of SQLAlchemy's, orm_ahead.py), or
    cannot be used (`why`)."""
    ok: bool
    pid: int | None = None
    files: int = 0
    why: str | None = None
    seconds: float = 0.0
    copies: bool = False
    stops_at: str | None = None
    mappers: str | None = None


@dataclass(frozen=True)
class Preloaded:
    """It imported more modules (a Preload request, or first-start guesses after it was ready)."""
    modules: int
    warmed: list[str]


@dataclass(frozen=True)
class SeedsSkipped:
    """First-start guesses it did not import, the project's sources not importing them (seeds.py)."""
    skipped: list[str]


REPORTS = {"started": Started, "imported": Imported, "ready": Ready, "failed": Failed, "served": Served,
           "uses": Uses}
REQUESTS = {"fork": Fork, "preload": Preload, "layer": BuildLayer, "no-layer": NoLayer, "no-orm-ahead": NoOrmAhead}
WARM_MESSAGES = {"ready": WarmStarted, "forked": Forked, "exit": ChildExit, "layer": LayerState,
                 "preloaded": Preloaded, "seeds": SeedsSkipped}

_TAGS = {**{cls: ("event", tag) for tag, cls in REPORTS.items()},
         **{cls: ("op", tag) for tag, cls in REQUESTS.items()},
         **{cls: ("event", tag) for tag, cls in WARM_MESSAGES.items()}}


class BadMessage(ValueError):
    """Not a message of the protocol it arrived on (never expected: both ends are the same code)."""


def encode(message) -> bytes:
    """The message as one JSON object (a report's line without its newline)."""
    key, tag = _TAGS[type(message)]
    return json.dumps({key: tag, **{f.name: getattr(message, f.name) for f in fields(message)}}).encode()


def tag_of(message) -> str:
    """The name a message has on the wire ("fork", "ready" ...)."""
    return _TAGS[type(message)][1]


def _decode(data: bytes | str, key: str, kinds: dict):
    try:
        obj = json.loads(data)
        cls = kinds[obj.pop(key)]
        return cls(**obj)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise BadMessage(f"not a {key} of this protocol: {str(data)[:200]!r} ({exc})") from None


def decode_report(line: bytes | str):
    return _decode(line, "event", REPORTS)


def decode_request(data: bytes | str):
    return _decode(data, "op", REQUESTS)


def decode_warm(data: bytes | str):
    return _decode(data, "event", WARM_MESSAGES)
