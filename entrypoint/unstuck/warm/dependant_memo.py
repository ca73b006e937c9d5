"""FastAPI's analysis of a route's endpoint and dependencies, done once per endpoint in every worker the warm process
forks (spare, fork, app layer), as field_memo.py does for its fields.

Why: FastAPI (before 0.119) analyses an endpoint again for every copy of its route that `include_router` makes: the
signature of the endpoint and of each dependency under it, each parameter's field (`get_dependant`), and each of the
router's own dependencies (`get_parameterless_sub_dependant`). A worker resumed from the app layer runs the
`include_router`s that were in progress when the saved module was reached: in mealie, 508 routes, 5,753 dependency
analyses, two thirds of what the worker does before it serves. The analysis is a function of the endpoint (or the
`Depends`), of which of its parameters the path names, of what the signature of each callable under it is read from
(checked on use: a class-based view sets an endpoint's `__signature__` after its first route, as mealie's
controllers do), and of the schema pydantic cached on each class its fields are built from (checked on use: a
`model_rebuild` makes a new one), once nothing in it is resolved from a namespace (a string or `ForwardRef`
annotation: not kept). So the first analysis is kept, and a later one with the same key and checks gets a copy of it: every `Dependant` and list in it new (FastAPI adds the router's
dependencies to the copy, and a `Security`'s scopes list is shared between the levels that extend it: the copy shares
it the same way), every field a copy of the first's (the same adapter, as field_memo would give), its `path` the new
route's. The one thing an analysis writes outside what it returns is replayed: a parameter's default `Query(...)`
object gets the parameter's annotation (FastAPI reads it back when it serves; two endpoints sharing one default
leave it with the last analysis's).

Only a FastAPI whose `Dependant` has exactly the fields of the form this copies (0.115, as mealie pins it) and whose
routes call the two functions by the names patched here is changed (`install` checks); elsewhere nothing changes.
The plain path (a fresh interpreter) never has this: a generation that fails is tried there before anything is
reported (reload/events.py).
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import sys
import types
import typing

from unstuck.warm import field_memo

# The fields of FastAPI 0.115's Dependant: a plain dataclass whose lists (and nothing else) are filled by the
# analysis, and whose cache_key is computed once, from call and scopes, when it is made.
_DEPENDANT_FIELDS = ("path_params", "query_params", "header_params", "cookie_params", "body_params", "dependencies",
                     "security_requirements", "name", "call", "request_param_name", "websocket_param_name",
                     "http_connection_param_name", "response_param_name", "background_tasks_param_name",
                     "security_scopes_param_name", "security_scopes", "use_cache", "path", "cache_key")
_GET_DEPENDANT_PARAMETERS = ("path", "call", "name", "security_scopes", "use_cache")
_PATH_PARAM = re.compile("{(.*?)}")  # FastAPI's get_path_param_names


class _NotKept(Exception):
    """The analysis may depend on more than its key: it is done again each time, as FastAPI does."""


class DependantMemo:
    """Analyses by endpoint (or Depends) and path parameters; `hits` and `built` say how it went."""

    def __init__(self, dependant_class, requirement_class, field_class) -> None:
        self.kinds = (dependant_class, requirement_class, field_class)
        self.kept: dict[tuple, tuple[object, list, list, list]] = {}
        self.hits = 0
        self.built = 0
        # While a route is built (route_memo.py): the checks of each analysis returned (None: not kept).
        self.seen: list | None = None

    def analysed(self, analyse, key_parts: tuple, path: str):
        """The analysis `analyse()` makes for a route at `path`: a copy of the one kept under `key_parts` and the
        path's parameters, or analyse()'s own (then kept, if nothing in it is resolved from a namespace)."""
        key = (key_parts, frozenset(_PATH_PARAM.findall(path)))
        found = self.kept.get(key)
        if found is not None:
            snapshot, schemas, signatures, writes = found
            if (all(cls.__dict__.get("__pydantic_core_schema__") is schema for cls, schema in schemas)
                    and all(_same(_signature_of(call), signature) for call, signature in signatures)):
                self.hits += 1
                # What the analysis writes on objects it does not own: a parameter's default `Query(...)` gets
                # the parameter's annotation, and FastAPI reads it back when it serves (the last analysis wins
                # where two endpoints share one default).
                for field_info, annotation in writes:
                    field_info.annotation = annotation
                if self.seen is not None:
                    self.seen.append((schemas, signatures, writes))
                return _Copier(self.kinds, path).dependant(snapshot)
        dependant = analyse()
        self.built += 1
        checks = None
        try:
            checks = schemas, signatures, writes = self._checked(dependant, path)
            self.kept[key] = (_Copier(self.kinds, path).dependant(dependant), schemas, signatures, writes)
        except _NotKept:
            self.kept.pop(key, None)
        if self.seen is not None:
            self.seen.append(checks)
        return dependant

    def _checked(self, dependant, path: str) -> tuple[list, list, list]:
        """Raise _NotKept unless the analysis is a function of its key and of what it returns; that is: the classes
        (and their schemas) the fields are built from, each callable analysed with what its signature is read from
        (a class-based view sets an endpoint's `__signature__` after its first route: mealie's controllers), and
        each field's FieldInfo with the annotation the analysis gave it."""
        dependant_class, _, field_class = self.kinds
        schemas: list = []
        signatures: list = []
        writes: list = []
        seen: set[int] = set()
        todo = [dependant]
        while todo:
            node = todo.pop()
            if id(node) in seen:
                continue
            seen.add(id(node))
            if type(node) is not dependant_class or node.path != path:
                raise _NotKept
            if id(node.call) not in seen:
                seen.add(id(node.call))
                _resolved_signature(node.call)
                signatures.append((node.call, _signature_of(node.call)))
            for name in ("path_params", "query_params", "header_params", "cookie_params", "body_params"):
                for field in getattr(node, name):
                    if type(field) is not field_class:
                        raise _NotKept
                    schemas.extend(_schemas(field))
                    writes.append((field.field_info, field.field_info.annotation))
            todo.extend(node.dependencies)
        return schemas, signatures, writes


def _resolved_signature(call) -> None:
    """Raise _NotKept if FastAPI reads an annotation of `call` from a namespace (a string, a ForwardRef): what it
    resolves to may change between two analyses."""
    try:
        signature = inspect.signature(call)
    except (TypeError, ValueError):
        raise _NotKept from None
    for parameter in signature.parameters.values():
        if _unresolved(parameter.annotation):
            raise _NotKept


def _signature_of(call):
    """What `inspect.signature(call)` (FastAPI's reading of it) is made from, read the way inspect reads it but
    cheaply where it can be: a `__signature__` (a class-based view's endpoint and class have one) is returned as it
    is; a plain function's code, defaults and annotations (a copy of their items); an instance's `__call__`'s (a
    security scheme's); for any other callable (a class without one, a partial, a method), the signature itself."""
    if type(call) is not types.MethodType:
        signature = getattr(call, "__signature__", None)
        if isinstance(signature, inspect.Signature):  # inspect returns it before anything else
            return ("signature", signature)
    if type(call) is types.FunctionType and "__wrapped__" not in call.__dict__:
        kwdefaults = call.__kwdefaults__
        return (call.__code__, call.__defaults__, kwdefaults and tuple(kwdefaults.items()),
                tuple(call.__annotations__.items()))
    kind = type(call)
    if (not isinstance(call, type) and type(kind.__dict__.get("__call__")) is types.FunctionType
            and getattr(call, "__wrapped__", None) is None and "__signature__" not in kind.__dict__):
        return ("instance", kind, _signature_of(kind.__dict__["__call__"]))
    try:
        return ("signature", inspect.signature(call))
    except (TypeError, ValueError):
        return None


def _same(now, then) -> bool:
    """Whether two _signature_of are equal; one whose comparison fails (a default whose == is an array) is not."""
    try:
        return bool(now == then)
    except Exception:  # noqa: BLE001 - whatever the user's objects raise from ==
        return False


def _unresolved(annotation) -> bool:
    if isinstance(annotation, (str, typing.ForwardRef)):
        return True
    return any(_unresolved(arg) for arg in typing.get_args(annotation))


def _schemas(field) -> list:
    """The classes a field's adapter is built from, with the schema pydantic cached on each (field_memo's key, which
    also refuses forward references and placeholders), or _NotKept; and the adapter must be complete."""
    keep: list = []
    try:
        field_memo.field_key(field, keep)
    except field_memo.NotKeyed:
        raise _NotKept from None
    adapter = getattr(field, "_type_adapter", None)
    if adapter is None or not field_memo.complete(adapter):
        raise _NotKept
    return [(cls, cls.__dict__.get("__pydantic_core_schema__")) for cls in keep if isinstance(cls, type)]


class _Copier:
    """A copy of an analysis with every Dependant, list, SecurityRequirement and field new, shared where the
    original shares it (one memo of copies by identity), and every Dependant's path the given one. (Made for each
    route include_router copies: kept lean. An empty list is new for each: FastAPI shares a scopes list between
    levels only once it has scopes, and nothing fills a finished analysis's lists but the route's own dependencies.)"""

    def __init__(self, kinds: tuple, path: str) -> None:
        self.dependant_class, self.requirement_class, self.field_class = kinds
        self.path = path
        self.copies: dict[int, object] = {}

    def dependant(self, node):
        copied = self.copies.get(id(node))
        if copied is not None:
            return copied
        copied = self.copies[id(node)] = object.__new__(type(node))
        values = node.__dict__.copy()
        for name in _LISTS:
            items = values[name]
            if type(items) is list:
                values[name] = self.list(items) if items else []
        values["path"] = self.path
        copied.__dict__ = values
        return copied

    def list(self, items: list) -> list:
        copied = self.copies.get(id(items))
        if copied is None:
            copied = self.copies[id(items)] = []
            copied.extend([self.item(item) for item in items])
        return copied

    def item(self, item):
        kind = type(item)
        if kind is self.dependant_class:
            return self.dependant(item)
        if kind is str:  # a scope
            return item
        if (kind is self.field_class or kind is self.requirement_class) and hasattr(item, "__dict__"):
            copied = self.copies.get(id(item))
            if copied is None:
                copied = self.copies[id(item)] = object.__new__(kind)
                values = item.__dict__.copy()
                if type(values.get("scopes")) is list:
                    values["scopes"] = self.list(values["scopes"])
                copied.__dict__ = values
            return copied
        raise _NotKept


# The Dependant's fields that may hold a list (security_scopes may be None).
_LISTS = ("path_params", "query_params", "header_params", "cookie_params", "body_params", "dependencies",
          "security_requirements", "security_scopes")


def install() -> DependantMemo | None:
    """Route FastAPI's analyses of routes through a memo, if this process imported FastAPI's routing already and its
    analysis has the form this copies; the memo, or None (nothing changed)."""
    routing = sys.modules.get("fastapi.routing")
    utils = sys.modules.get("fastapi.dependencies.utils")
    models = sys.modules.get("fastapi.dependencies.models")
    if routing is None or utils is None or models is None:
        return None
    dependant_class = getattr(models, "Dependant", None)
    requirement_class = getattr(models, "SecurityRequirement", None)
    field_class = getattr(utils, "ModelField", None)
    get_dependant = getattr(routing, "get_dependant", None)
    get_parameterless = getattr(routing, "get_parameterless_sub_dependant", None)
    if (not dataclasses.is_dataclass(dependant_class) or requirement_class is None
            or tuple(f.name for f in dataclasses.fields(dependant_class)) != _DEPENDANT_FIELDS
            or getattr(dependant_class, "__slots__", None) is not None or field_class is None
            or get_dependant is not getattr(utils, "get_dependant", None)
            or get_parameterless is not getattr(utils, "get_parameterless_sub_dependant", None)
            or tuple(inspect.signature(get_dependant).parameters) != _GET_DEPENDANT_PARAMETERS
            or getattr(get_dependant, "_unstuck_memo", None) is not None):
        return None
    memo = DependantMemo(dependant_class, requirement_class, field_class)

    def memo_get_dependant(*, path: str, call, **rest):
        if rest:  # a dependency's own analysis (a name, scopes): only routes call it with path and call alone
            return get_dependant(path=path, call=call, **rest)
        return memo.analysed(lambda: get_dependant(path=path, call=call), ("endpoint", _kept(call)), path)

    def memo_get_parameterless_sub_dependant(*, depends, path: str):
        parts = ("router", _kept(depends), _kept(depends.dependency), depends.use_cache,
                 tuple(getattr(depends, "scopes", None) or ()))
        return memo.analysed(lambda: get_parameterless(depends=depends, path=path), parts, path)

    memo_get_dependant._unstuck_memo = memo
    routing.get_dependant = memo_get_dependant
    routing.get_parameterless_sub_dependant = memo_get_parameterless_sub_dependant
    global installed
    installed = memo
    return memo


def _kept(value) -> tuple:
    """A key part for an object compared by identity: the object itself rides along (kept alive with the entry, so
    its id is never reused)."""
    return (id(value), _Alive(value))


class _Alive:
    """Holds an object in a key without comparing it (its own __eq__ might be anything)."""

    __slots__ = ("value",)

    def __init__(self, value) -> None:
        self.value = value

    def __eq__(self, other) -> bool:
        return isinstance(other, _Alive)

    def __hash__(self) -> int:
        return 0


installed: DependantMemo | None = None
