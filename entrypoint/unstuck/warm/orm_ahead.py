"""SQLAlchemy's mappers configured in the app layer, at its stop, instead of in every worker resumed from it.

Why: SQLAlchemy configures the ORM's mappers (resolves every relationship, its join conditions and backrefs) the
first time one is used, which in most apps is the first query of the app's startup. A worker resumed from the app
layer has every model imported by the layer but configured by nobody, so each reload paid it again: in mealie (48
mappers, 135 relationships) 0.13 s of a 0.48 s leaf edit. Configured once in the layer, every worker resumed from it
(and the layer's copies) starts with them configured.

When that is what a fresh interpreter would have: SQLAlchemy configures whatever mappers exist when asked; a fresh
interpreter asks once everything is imported. So the layer configures only when it can be the same thing:
- there is something to configure, and no configure listener (`before_configured`, `after_configured`,
  `mapper_configured`, `before_mapper_configured`) is registered: one would run at the stop, not at the first query;
- configuring succeeds: one that fails (a relationship to a class the rest of the import defines) leaves the mappers
  failed for good, so that layer is not used and the next one for the same plan does not configure ahead
  (warm_process.py);
- and, checked in the worker once its import is done (`unproven`), the rest of the import mapped no class, made no
  registry and added no configure listener: the mappers are then exactly those a fresh interpreter configures, all
  at once as there. Otherwise the worker serves nothing: its generation is tried in a fresh interpreter first, as a
  failure of a fast path is (generation/worker.py), and configuring ahead is off until the container restarts.
"""

from __future__ import annotations

import sys
import time
import warnings

# Set in the layer once it configured ahead (a fork inherits it): the registries and mappers it configured, and the
# warnings configuring gave (SQLAlchemy's SAWarning on a relationship), for the worker to show as its own.
configured: tuple[frozenset[int], frozenset[int]] | None = None
warned: list[warnings.WarningMessage] = []

# The fast path a worker names when it holds its generation for checking (generation/worker.py): narrowed alone.
SOURCE = "app layer's configured mappers"
CONFIGURE_EVENTS = ("before_configured", "after_configured", "before_mapper_configured", "mapper_configured")


class Failed(str):
    """Why configuring ahead failed: this layer cannot be used, and the next one for its plan does not try."""


def _orm():
    """SQLAlchemy's mapper module, if this process imported the ORM (else nothing is mapped), in the form this
    knows (SQLAlchemy 1.4 and 2.x: its registries and `configure_mappers`)."""
    module = sys.modules.get("sqlalchemy.orm.mapper")
    if all(hasattr(module, name) for name in ("_all_registries", "configure_mappers", "Mapper")):
        return module
    return None


def _state(mapperlib) -> tuple[frozenset[int], frozenset[int]]:
    registries = mapperlib._all_registries()
    return (frozenset(id(reg) for reg in registries),
            frozenset(id(mapper) for reg in registries for mapper in reg.mappers))


def listener(mapperlib) -> str | None:
    """A configure listener registered anywhere (on Mapper, a base, a mapped class or one mapper), by event name."""
    mapper_class = mapperlib.Mapper
    for event in CONFIGURE_EVENTS:
        if any(len(fns) for fns in getattr(mapper_class.dispatch, event)._clslevel.values()):
            return event
    for reg in mapperlib._all_registries():
        for mapper in reg.mappers:
            for event in CONFIGURE_EVENTS:
                if len(getattr(mapper.dispatch, event)):
                    return event
    return None


def configure() -> str | Failed | None:
    """At the layer's stop: configure the mappers if a fresh interpreter's configuration could be the same (see
    the module's docstring); a note saying what was done, Failed saying why it cannot be used, or None (nothing
    done: nothing to configure, or a listener)."""
    global configured
    mapperlib = _orm()
    if mapperlib is None:
        return None
    try:  # SQLAlchemy's own books, read as 1.4 and 2.x keep them
        if not any(reg._new_mappers for reg in mapperlib._all_registries()) or listener(mapperlib) is not None:
            return None
    except Exception:  # noqa: BLE001 - a SQLAlchemy that keeps them otherwise: nothing is done ahead
        return None
    began = time.monotonic()
    try:
        # Recorded under the app's own filters (one that makes a warning an error fails here, as it would there).
        with warnings.catch_warnings(record=True) as caught:
            mapperlib.configure_mappers()
    except Exception as exc:  # noqa: BLE001 - the app's mappers: a fresh interpreter would configure them later
        return Failed(f"configuring SQLAlchemy's mappers at the stop fails ({type(exc).__name__})")
    warned[:] = caught
    configured = _state(mapperlib)
    return f"SQLAlchemy's {len(configured[1])} mappers configured ahead in {time.monotonic() - began:.3f} s"


def unproven() -> str | None:
    """In a worker resumed from a layer that configured ahead, its import done: why its mappers may differ from a
    fresh interpreter's (None: they cannot; the warnings configuring gave are then shown, as a fresh interpreter
    shows them at its first query)."""
    if configured is None:
        return None
    mapperlib = _orm()
    try:
        now, event = _state(mapperlib), listener(mapperlib)
    except Exception as exc:  # noqa: BLE001 - read in the layer, it cannot be read now: then nothing is proven
        return f"SQLAlchemy's mappers cannot be read after the import ({type(exc).__name__})"
    if now != configured:
        added = len(now[1] - configured[1])
        return (f"the import after the app layer's stop mapped {added} more class(es) or made a registry, after the "
                "layer had configured SQLAlchemy's mappers")
    if event is not None:
        return f"the import after the app layer's stop registered a {event} listener"
    for caught in warned:
        try:
            warnings.warn_explicit(caught.message, caught.category, caught.filename, caught.lineno)
        except Exception as exc:  # noqa: BLE001 - a filter the app set after the stop makes it an error
            return f"a warning SQLAlchemy gave configuring the mappers ahead is now an error ({type(exc).__name__})"
    return None
