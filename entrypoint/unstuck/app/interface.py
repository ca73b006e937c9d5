"""Tell what a loaded object is (ASGI3, ASGI2, WSGI app, or an app factory) and adapt it to ASGI3.

uvicorn's own "auto" detection calls every sync callable ASGI2, so a Flask app is "served" and each
request fails with `Flask.__call__() missing ... 'start_response'`. This decides from the signature
instead: how many required positional parameters the callable takes, and whether it is a coroutine
function. WSGI apps are served through a2wsgi (a maintained WSGI-to-ASGI adapter with a thread pool),
ASGI2 apps through uvicorn's own ASGI2Middleware.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

ASGI3, ASGI2, WSGI, FACTORY = "asgi3", "asgi2", "wsgi", "factory"
EXPECTED = ("an ASGI app (async callable taking scope, receive, send), a WSGI app (callable taking environ, "
            "start_response), or a function that returns one when called with no arguments")


@dataclass(frozen=True)
class Kind:
    interface: str | None  # ASGI3, ASGI2, WSGI, FACTORY, or None: not an app
    what: str  # what the object is, for messages: "a str ('x')", "a function taking (request)"


def _required_positional(params: list[inspect.Parameter]) -> tuple[int, bool]:
    """(required positional parameters, whether it takes *args)."""
    required = sum(1 for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
                   and p.default is p.empty)
    return required, any(p.kind is p.VAR_POSITIONAL for p in params)


def _signature(obj) -> list[inspect.Parameter] | None:
    try:
        return list(inspect.signature(obj).parameters.values())
    except (TypeError, ValueError):  # builtins without a signature
        return None


def describe(obj) -> str:
    name = type(obj).__name__
    if isinstance(obj, (str, bytes, int, float, bool, type(None))):
        text = repr(obj)
        return f"a {name} ({text[:40] + '...' if len(text) > 40 else text})"
    if inspect.ismodule(obj):
        return f"the module {obj.__name__}"
    if inspect.isclass(obj):
        return f"the class {obj.__module__}.{obj.__qualname__} (not an instance of it)"
    if inspect.isfunction(obj) or inspect.ismethod(obj):
        params = _signature(obj) or []
        kind = "an async function" if inspect.iscoroutinefunction(obj) else "a function"
        return f"{kind} taking ({', '.join(p.name for p in params)})"
    text = name if type(obj).__module__ == "builtins" else f"{type(obj).__module__}.{type(obj).__qualname__} object"
    return f"{'an' if text[:1].lower() in 'aeiou' else 'a'} {text}"


def detect(obj) -> Kind:
    what = describe(obj)
    if inspect.isclass(obj):
        # An ASGI2 app may be a class: instantiated with the scope, the instance awaited with receive, send.
        if hasattr(obj, "__await__"):
            return Kind(ASGI3, what)  # uvicorn's own rule for awaitable classes
        params = _signature(obj)
        if params is not None and _required_positional(params)[0] == 1 and inspect.iscoroutinefunction(
                getattr(obj, "__call__", None)):
            return Kind(ASGI2, what)
        return Kind(None, what)
    if not callable(obj):
        return Kind(None, what)
    is_function = inspect.isfunction(obj) or inspect.ismethod(obj)
    is_async = inspect.iscoroutinefunction(obj) or inspect.iscoroutinefunction(getattr(obj, "__call__", None))
    params = _signature(obj)
    if params is None:
        return Kind(None, what)
    required, varargs = _required_positional(params)
    if is_async:
        return Kind(ASGI3 if required == 3 or (varargs and required <= 3) else None, what)
    if required == 3:
        return Kind(ASGI3, what)  # a sync wrapper that returns the coroutine (decorators, some middleware)
    if required == 2 or (varargs and required < 2):
        return Kind(WSGI, what)
    if required == 1:
        return Kind(ASGI2, what)
    if required == 0 and is_function:
        return Kind(FACTORY, what)
    return Kind(None, what)


def as_asgi3(app, interface: str):
    """The ASGI3 callable uvicorn serves, for an app of the given interface."""
    if interface == WSGI:
        from a2wsgi import WSGIMiddleware

        return WSGIMiddleware(app)
    if interface == ASGI2:
        from unstuck.seams import uvicorn_seam

        return uvicorn_seam.asgi2_middleware(app)
    return app
