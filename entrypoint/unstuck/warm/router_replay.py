"""FastAPI routers included ahead, by a layer of a chain while it waits, for the worker it becomes (done_ahead.py).

Why: a worker resumed from an app layer runs the `include_router`s of the modules it resumes, and a router
included with a prefix gets routes with new paths, which route_memo.py cannot take from anything the layer built.
In mealie the `/api` router (mealie/routes/__init__.py, resumed at every save of a view) includes 13 routers the
layer imported whole: 243 routes built in every worker, 0.07 s of its import. Everything such a route is built
from is the layer's (the included router's routes, their endpoints and models) but the including router's
settings (its prefix, tags, responses ...) and the include's options. So the chain's first worker notes each
`include_router` it runs, and says (after its first answer) which of them included a router with settings and
options of plain values (strings, numbers, FastAPI's defaults, classes named by module and name); the next
layer includes the same router (found among the module attributes it holds whole) into a throwaway router of
those settings while it waits. The routes this builds are kept by route_memo under their arguments, and the
worker's own `include_router` then builds routes of the same arguments: route_memo gives it copies, after its
checks. A replay that does not match what the worker does (a router changed since, settings that differ) builds
routes nobody takes: it never changes what is served, only what the layer holds.

Nothing of the app's runs in a replay: route_memo builds ahead only the routes it would keep (FastAPI's own
`APIRoute.__init__`, FastAPI's unique-id function), and without their handler (a route class's
`get_route_handler` may be the app's: the worker's hit makes its own); a router whose route class has an
`__init__` of its own is not replayed.
"""

from __future__ import annotations

import enum
import sys
import warnings

from unstuck.warm import route_memo

# While a chain's worker records (done_ahead.py): each include_router it ran, as (router, included, options).
calls: list | None = None
_SETTINGS = ("prefix", "tags", "dependencies", "default_response_class", "responses", "callbacks", "deprecated",
             "include_in_schema", "generate_unique_id_function", "route_class")


class NotPlain(Exception):
    """A value a replay could not make again as it was."""


def install() -> bool:
    """Note the include_router calls a chain's worker runs while `calls` is a list (FastAPI's APIRouter)."""
    routing = sys.modules.get("fastapi.routing")
    router_class = getattr(routing, "APIRouter", None)
    include = getattr(router_class, "include_router", None)
    if include is None or getattr(include, "_unstuck_replay", False):
        return False

    def include_router(self, router, *args, **options):
        if calls is not None and not args:
            calls.append((self, router, options))
        return include(self, router, *args, **options)

    include_router._unstuck_replay = True
    include_router.__wrapped__ = include
    router_class.include_router = include_router
    return True


def described(noted: list) -> list[dict]:
    """The include_router calls `noted` (as `calls` holds them) that a layer can replay: the included router by
    its id (a layer finds it among its modules' attributes), the including router's settings and the options."""
    if _fastapi() is None:
        return []
    out = []
    for router, included, options in noted:
        try:  # a Depends or a callback route is never plain: made where the router is, new in each worker
            settings = {name: encode(getattr(router, name)) for name in _SETTINGS}
            out.append({"included": id(included), "routes": len(included.routes), "settings": settings,
                        "options": {name: encode(value) for name, value in options.items()}})
        except (NotPlain, AttributeError, RecursionError):
            continue
    return out


def replay(described_calls: list[dict], stop=lambda: False) -> int:
    """Include each described router into a throwaway router of the described settings (in a layer, one thread),
    route_memo building ahead; how many routes were built. `stop()` is asked between includes (a request came)."""
    fastapi = _fastapi()
    memo = route_memo.installed
    if fastapi is None or memo is None or not described_calls:
        return 0
    routers = _whole_routers(fastapi["APIRouter"])
    built = 0
    memo.ahead = True
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a replay says nothing: the worker's own include says what it says
            for call in described_calls:
                if stop():
                    break
                built += _included(call, routers, fastapi)
    finally:
        memo.ahead = False
    return built


def _included(call: dict, routers: dict, fastapi: dict) -> int:
    """One described include, replayed; how many routes it built (0: not replayable here)."""
    try:
        included = routers.get(call["included"])
        if included is None or len(included.routes) != call["routes"] or not _replayable(included, fastapi):
            return 0
        settings = {name: decode(value) for name, value in call["settings"].items()}
        options = {name: decode(value) for name, value in call["options"].items()}
        stand_in = fastapi["APIRouter"](**settings)
        stand_in.include_router(included, **options)
    except Exception:  # noqa: BLE001 - a record this FastAPI refuses: nothing is kept, nothing changes
        return 0
    return len(stand_in.routes)


def _fastapi() -> dict | None:
    routing = sys.modules.get("fastapi.routing")
    datastructures = sys.modules.get("fastapi.datastructures")
    if routing is None or datastructures is None:
        return None
    return {"APIRouter": routing.APIRouter, "APIRoute": routing.APIRoute,
            "DefaultPlaceholder": datastructures.DefaultPlaceholder}


def _whole_routers(router_class) -> dict[int, object]:
    """The routers this process holds as attributes of modules imported whole (not one stopped in), by id."""
    found = {}
    for module in list(sys.modules.values()):
        spec = getattr(module, "__spec__", None)
        namespace = getattr(module, "__dict__", None)
        if spec is None or getattr(spec, "_initializing", False) or type(namespace) is not dict:
            continue
        for value in list(namespace.values()):
            if issubclass(type(value), router_class):  # type(): a proxy's __class__ would run the app's code
                found[id(value)] = value
    return found


def _replayable(router, fastapi: dict) -> bool:
    """Whether including `router` runs FastAPI's code only: its routes' classes have FastAPI's __init__ (route_memo
    builds ahead only what it keeps, without a handler: no route class's code and no unique-id function of the
    app's runs)."""
    init = fastapi["APIRoute"].__init__
    return all(type(route).__init__ is init for route in router.routes if isinstance(route, fastapi["APIRoute"]))


# -- plain values, as JSON ------------------------------------------------------------------------------------

def encode(value):
    """`value` as JSON a replay decodes into an equal value (the same object, for classes and functions), or
    NotPlain."""
    kind = type(value)
    if value is None or kind in (bool, int, float, str):
        return value
    if kind is list or kind is tuple:
        return {kind.__name__: [encode(item) for item in value]}
    if kind is dict:
        return {"dict": [[encode(key), encode(item)] for key, item in value.items()]}
    fastapi = _fastapi()
    if fastapi is not None and kind is fastapi["DefaultPlaceholder"]:
        return {"default": encode(value.value)}
    if isinstance(value, enum.Enum):  # a tag, as FastAPI's docs suggest them
        kind_ref = encode(kind)
        if _named(*kind_ref["object"]).__members__.get(value.name) is value:
            return {"enum": [kind_ref["object"], value.name]}
        raise NotPlain
    if isinstance(value, type) or callable(value):
        module, name = getattr(value, "__module__", None), getattr(value, "__qualname__", None)
        if isinstance(module, str) and isinstance(name, str) and _named(module, name) is value:
            return {"object": [module, name]}
    raise NotPlain


def decode(value):
    if not isinstance(value, dict):
        return value
    (kind, content), = value.items()
    if kind == "list":
        return [decode(item) for item in content]
    if kind == "tuple":
        return tuple(decode(item) for item in content)
    if kind == "dict":
        return {decode(key): decode(item) for key, item in content}
    if kind == "default":
        return _fastapi()["DefaultPlaceholder"](decode(content))
    if kind == "enum":
        found = _named(*content[0])
        member = found.__members__.get(content[1]) if isinstance(found, enum.EnumMeta) else None
        if member is None:
            raise NotPlain
        return member
    if kind == "object":
        found = _named(*content)
        if found is None:
            raise NotPlain
        return found
    raise NotPlain


def _named(module: str, name: str):
    """The object `module`'s attribute path `name` leads to, in a module imported whole (None otherwise)."""
    found = sys.modules.get(module)
    spec = getattr(found, "__spec__", None)
    if found is None or spec is None or getattr(spec, "_initializing", False) or "<locals>" in name:
        return None
    for part in name.split("."):  # through __dict__: no __getattr__ of the app's runs
        namespace = getattr(found, "__dict__", None)
        found = namespace.get(part) if namespace is not None else None
        if found is None:
            return None
    return found
