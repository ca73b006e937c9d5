"""A FastAPI route built again from the same arguments takes what the first one was built from, in every worker the
warm process forks (spare, fork, app layer), on FastAPI 0.115 (as mealie pins it).

Why: `include_router` makes a new route for each route of the router it includes; including a router without a
prefix (`app.include_router(api)`, how most FastAPI apps mount their routers) calls `APIRoute(...)` with exactly the
arguments the route it copies was made with, but for the app it now belongs to (`dependency_overrides_provider`). A
worker resumed from the app layer runs the `include_router`s that were in progress when the saved module was
reached: in mealie the `/api` router's 254 routes, then the app's copies of them. With the analyses and fields kept
(dependant_memo.py, field_memo.py) each copy still reads its endpoint and analyses again (about 0.2 ms a route), so
the worker spent half of its import building, for the app, the routes it had just built for `/api`.

A route is a function of its arguments and of what its endpoint and dependencies are read to: their signatures, the
schema pydantic cached on each class their fields are built from (dependant_memo's checks), the endpoint's name and
docstring, the response models' schemas; and, for its unique id, of FastAPI's own `generate_unique_id` (a function of
the route's name, path and methods) unless an operation id is given. So a route whose arguments equal (containers by
their items, other objects by identity) those of one built before, whose checks still hold, gets that one's
attributes: its containers new (as FastAPI makes them for each route), what FastAPI never changes once a route is
built shared (the analysis, the fields, the body model: their second build would be equal), and its own handler,
made for its own `dependency_overrides_provider`. What that analysis wrote on objects it does not own is replayed
(dependant_memo). Not kept: a route whose analysis dependant_memo would not keep (a string annotation), a custom
`generate_unique_id_function` (it could depend on anything), a route class with its own `__init__`.

Only a FastAPI whose `APIRoute.__init__` takes exactly the arguments of 0.115 and refers to nothing but the names
of 0.115's is changed (`install` checks); elsewhere nothing changes. The plain path (a fresh interpreter) never has
this: a generation that fails is tried there before anything is reported (reload/events.py).
"""

from __future__ import annotations

import inspect
import sys

from unstuck.warm import dependant_memo, field_memo

# APIRoute.__init__'s arguments and every name its code refers to, in FastAPI 0.115.
_INIT_PARAMETERS = ("self", "path", "endpoint", "response_model", "status_code", "tags", "dependencies", "summary",
                    "description", "response_description", "responses", "deprecated", "name", "methods",
                    "operation_id", "response_model_include", "response_model_exclude", "response_model_by_alias",
                    "response_model_exclude_unset", "response_model_exclude_defaults", "response_model_exclude_none",
                    "include_in_schema", "response_class", "dependency_overrides_provider", "callbacks",
                    "openapi_extra", "generate_unique_id_function")
_INIT_NAMES = frozenset({
    "DefaultPlaceholder", "IntEnum", "Response", "__doc__", "_embed_body_fields", "_flat_dependant",
    "_should_embed_body_fields", "app", "body_field", "body_params", "callable", "callbacks", "cleandoc",
    "compile_path", "create_cloned_field", "create_model_field", "dependant", "dependencies",
    "dependency_overrides_provider", "deprecated", "description", "dict", "endpoint", "generate_unique_id_function",
    "get", "get_body_field", "get_dependant", "get_flat_dependant", "get_name", "get_parameterless_sub_dependant",
    "get_route_handler", "get_typed_return_annotation", "include_in_schema", "insert", "inspect", "int",
    "is_body_allowed_for_status_code", "isinstance", "items", "lenient_issubclass", "list", "methods", "name",
    "openapi_extra", "operation_id", "param_convertors", "path", "path_format", "path_regex", "request_response",
    "response_class", "response_description", "response_field", "response_fields", "response_model",
    "response_model_by_alias", "response_model_exclude", "response_model_exclude_defaults",
    "response_model_exclude_none", "response_model_exclude_unset", "response_model_include", "responses",
    "secure_cloned_response_field", "split", "status_code", "strip", "summary", "tags", "unique_id", "value"})
# The attributes APIRoute.__init__ makes anew for each route (a list, a dict, a set): copied for each.
_CONTAINERS = ("tags", "responses", "dependencies", "callbacks", "methods", "response_fields", "param_convertors")
_PRIMITIVES = (type(None), bool, int, float, str, bytes)


class _NotKept(Exception):
    """The route may depend on more than its arguments and checks: built as FastAPI does."""


class RouteMemo:
    """Routes by their arguments; `hits` and `built` say how it went."""

    def __init__(self, route_class, placeholder_class, default_unique_id, get_name, request_response,
                 analyses: dependant_memo.DependantMemo, fields: field_memo.FieldMemo) -> None:
        self.route_class = route_class
        self.analyses, self.fields = analyses, fields
        self.placeholder_class = placeholder_class
        self.default_unique_id = default_unique_id
        self.get_name = get_name
        self.request_response = request_response
        self.kept: dict[tuple, tuple[dict, tuple]] = {}
        self.hits = 0
        self.built = 0
        # While a layer builds routes ahead (router_replay.py): only routes it can keep are built, without their
        # handler (a route class's get_route_handler may be the app's code; a hit makes its own).
        self.ahead = False

    def key(self, route, arguments: dict) -> tuple:
        """What the route is built from, bar its dependency_overrides_provider (or _NotKept)."""
        if route.__dict__ or type(route).__init__ is not self.route_class.__init__:
            raise _NotKept  # a subclass's own __init__ sets attributes around this one
        unique_id = arguments["generate_unique_id_function"]
        if not arguments["operation_id"] and not (
                isinstance(unique_id, self.placeholder_class) and unique_id.value is self.default_unique_id):
            raise _NotKept  # a unique id made by a function of the app's: it could depend on anything
        parts = [type(route)]
        for name in _INIT_PARAMETERS[1:]:
            if name != "dependency_overrides_provider":
                parts.append(self._value(arguments[name]))
        for depends in arguments["dependencies"] or ():  # what get_parameterless_sub_dependant reads of each
            parts.append((dependant_memo._kept(depends.dependency), depends.use_cache,
                          tuple(getattr(depends, "scopes", None) or ())))
        return tuple(parts)

    def _value(self, value):
        kind = type(value)
        if kind in _PRIMITIVES:
            return (kind, value)
        if kind is list or kind is tuple:
            return (kind, tuple(self._value(item) for item in value))
        if kind is set or kind is frozenset:
            return (kind, frozenset(self._value(item) for item in value))
        if kind is dict:
            return (kind, tuple((self._value(k), self._value(v)) for k, v in value.items()))
        if kind is self.placeholder_class:
            return (kind, self._value(value.value))
        return dependant_memo._kept(value)  # a callable, a class, a Depends, an enum member: by identity

    def checks(self, route, arguments: dict, analyses: list, fields: list) -> tuple:
        """What the route read besides its arguments, as it was when it was built: the checks of its analyses (the
        endpoint's and its router's dependencies', `analyses` as dependant_memo returned them), the classes (and
        schemas) of its response fields (`fields` as field_memo found them), its endpoint's name and docstring; or
        _NotKept."""
        if len(analyses) != 1 + len(route.dependencies) or None in analyses:
            raise _NotKept  # an analysis dependant_memo does not keep
        if isinstance(arguments["response_model"], self.placeholder_class) and dependant_memo._unresolved(
                inspect.signature(route.endpoint).return_annotation):
            raise _NotKept  # a response model named by a string: resolved in a namespace that may change
        schemas = [schema for checks in analyses for schema in checks[0]]
        keeps = {id(field): keep for field, keep in fields}
        for field in (route.response_field, *route.response_fields.values()):
            if field is None:
                continue
            keep = keeps.get(id(field))
            if keep is None:
                raise _NotKept
            schemas.extend((cls, cls.__dict__.get("__pydantic_core_schema__")) for cls in keep if isinstance(cls, type))
        signatures = tuple(signature for checks in analyses for signature in checks[1])
        writes = tuple(write for checks in analyses for write in checks[2])
        endpoint = route.endpoint
        return tuple(schemas), signatures, writes, self.get_name(endpoint), getattr(endpoint, "__doc__", None)

    def still(self, checks: tuple, endpoint) -> bool:
        schemas, signatures, _, name, doc = checks
        return (all(cls.__dict__.get("__pydantic_core_schema__") is schema for cls, schema in schemas)
                and all(dependant_memo._same(dependant_memo._signature_of(call), signature)
                        for call, signature in signatures)
                and self.get_name(endpoint) == name and getattr(endpoint, "__doc__", None) == doc)

    def init(self, route, original_init, arguments: dict) -> None:
        try:
            key = self.key(route, arguments)
            found = self.kept.get(key)
        except Exception:  # noqa: BLE001 - not kept (_NotKept), or arguments FastAPI will refuse: built as it does
            key = found = None
        if self.ahead and (key is None or (found is not None and self.still(found[1], arguments["endpoint"]))):
            return  # not kept (it may run the app's code), or kept already: nothing to build ahead
        if found is not None:
            attributes, checks = found
            if self.still(checks, arguments["endpoint"]):
                self.hits += 1
                for field_info, annotation in checks[2]:  # as the analyses would (dependant_memo)
                    field_info.annotation = annotation
                route.__dict__.update(_copied(attributes))
                route.dependency_overrides_provider = arguments["dependency_overrides_provider"]
                route.app = self.request_response(route.get_route_handler())
                return
        # What the analyses and fields read, as the two memos say while this route is built; not while another
        # one is (a thread's: its analyses would be counted in, and this one is not kept).
        collecting = key is not None and self.analyses.seen is None and self.fields.seen is None
        if collecting:
            self.analyses.seen, self.fields.seen = [], []
        if self.ahead:
            route.__dict__["get_route_handler"] = _no_handler
        try:
            original_init(route, **arguments)
            seen = (self.analyses.seen, self.fields.seen)
        finally:
            if collecting:
                self.analyses.seen = self.fields.seen = None
            if self.ahead:
                route.__dict__.pop("get_route_handler", None)
        self.built += 1
        if not collecting:
            return
        try:
            self.kept[key] = (_copied(route.__dict__), self.checks(route, arguments, *seen))
        except (_NotKept, ValueError, TypeError):  # not kept, or a signature inspect cannot read
            self.kept.pop(key, None)


def _no_handler():
    """A route's handler while it is built ahead: never kept (a hit makes the route's own)."""
    return None


def _copied(attributes: dict) -> dict:
    """A route's attributes with the containers FastAPI makes anew for each route new (their items shared)."""
    copied = dict(attributes)
    for name in _CONTAINERS:
        value = copied.get(name)
        if value is not None:
            copied[name] = type(value)(value)
    return copied


def install() -> RouteMemo | None:
    """Route FastAPI's APIRoute.__init__ through a memo, if this process imported FastAPI's routing already, the
    analyses memo is installed (its checks are this one's) and APIRoute.__init__ has 0.115's form; the memo, or
    None (nothing changed)."""
    routing = sys.modules.get("fastapi.routing")
    datastructures = sys.modules.get("fastapi.datastructures")
    utils = sys.modules.get("fastapi.utils")
    if (routing is None or datastructures is None or utils is None or dependant_memo.installed is None
            or field_memo.installed is None):
        return None
    route_class = getattr(routing, "APIRoute", None)
    placeholder_class = getattr(datastructures, "DefaultPlaceholder", None)
    init = getattr(route_class, "__init__", None)
    code = getattr(init, "__code__", None)
    if (code is None or placeholder_class is None or getattr(init, "_unstuck_memo", None) is not None
            or tuple(inspect.signature(init).parameters) != _INIT_PARAMETERS
            or frozenset(code.co_names) != _INIT_NAMES
            or getattr(routing, "get_name", None) is None or getattr(routing, "request_response", None) is None
            or getattr(utils, "generate_unique_id", None) is None):
        return None
    memo = RouteMemo(route_class, placeholder_class, utils.generate_unique_id, routing.get_name,
                     routing.request_response, dependant_memo.installed, field_memo.installed)
    defaults = {name: parameter.default for name, parameter in inspect.signature(init).parameters.items()
                if parameter.default is not inspect.Parameter.empty}

    def memo_init(self, path, endpoint, **given) -> None:
        arguments = {**defaults, **given, "path": path, "endpoint": endpoint}
        memo.init(self, init, arguments)

    memo_init._unstuck_memo = memo
    memo_init.__wrapped__ = init
    route_class.__init__ = memo_init
    global installed
    installed = memo
    return memo


installed: RouteMemo | None = None
