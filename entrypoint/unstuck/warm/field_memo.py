"""FastAPI's route fields, built once per content in every worker the warm process forks (spare, fork, app layer).

Why: FastAPI builds a pydantic `TypeAdapter` for every parameter and response model of every route, and (before
0.119) again for every copy of a route that `include_router` makes (a route included into a router that is included
into the app is built three times); many routes also share parameters (`skip: int = 0`). A worker resumed from the
app layer runs the rest of the imports that were in progress when the saved module was reached: in a large FastAPI
service (mealie: about 400 routes) that is every `include_router` of the app, 800 routes and 3,000 adapters, nearly
all of them built before by the layer for the same types; a spare builds 4,654 of them, 340 different. An adapter
is a pure function of what it is built from: the annotation (its classes, and the schema pydantic cached on each of
them), the `FieldInfo`'s attributes, the field's config, and nothing else once forward references are left out
(those are resolved in the caller's namespace). So each adapter built is kept under a key made of exactly that, and
a later build with the same key gets the same adapter (FastAPI only reads it).

What is not keyed is not kept: a string or `ForwardRef` anywhere in the annotation, a class whose schema is still a
placeholder (`MockCoreSchema`), an adapter that is incomplete. Objects in the key are compared by identity and kept
alive with the entry (so an id is never reused), except primitives, tuples, containers a FieldInfo gets anew for
each field and frozen dataclasses (annotated_types' `Le(10)`), which are compared by value; a model rebuilt later
(`model_rebuild`) has a new schema object, hence a new key. Only a FastAPI whose `ModelField.__post_init__` builds
the adapter from those alone is patched (`install` checks the names its code refers to); elsewhere nothing changes.
The plain path (a fresh interpreter) never has this: a generation that fails is tried there before anything is
reported (reload/events.py).
"""

from __future__ import annotations

import sys
import typing

_PRIMITIVES = frozenset({type(None), bool, int, float, complex, str, bytes})
# Every name the __post_init__s this wraps refer to: `TypeAdapter(Annotated[field_info.annotation, field_info])`
# (FastAPI 0.115, for one), `TypeAdapter(Annotated[annotation, *metadata, Field(**attributes)], config=self.config)`
# under a warnings filter (0.165, for one). One that refers to anything else may build from more than the key.
_POST_INIT_NAMES = {"TypeAdapter", "Annotated", "field_info", "annotation", "_type_adapter", "warnings",
                    "catch_warnings", "shared", "PYDANTIC_VERSION_MINOR_TUPLE", "pydantic.warnings",
                    "UnsupportedFieldAttributeWarning", "simplefilter", "asdict", "Field", "cast", "Any", "config"}


class NotKeyed(Exception):
    """The field's adapter may depend on more than its key can say: build it as FastAPI does."""


class FieldMemo:
    """Adapters by what they are built from (see the module's docstring); `hits` and `built` say how it went."""

    def __init__(self) -> None:
        self.adapters: dict[tuple, tuple[object, list]] = {}
        self.hits = 0
        self.built = 0
        # While a route is built (route_memo.py): each field, with the classes its key refers to (None: not kept).
        self.seen: list | None = None

    def find(self, field) -> tuple[tuple | None, list, object | None]:
        """The key of a ModelField's adapter (None: not to be kept), what the key refers to, and the adapter kept
        under it (None: to be built). The key: its FieldInfo's, its mode and its config (FastAPI 0.119 builds the
        adapter with it); not its name, which the adapter is not built from."""
        keep: list = []
        try:
            key = field_key(field, keep)
        except NotKeyed:
            return None, keep, None
        found = self.adapters.get(key)
        if found is not None:
            self.hits += 1
            return key, keep, found[0]
        return key, keep, None

    def keep(self, key: tuple | None, keep: list, adapter) -> None:
        self.built += 1
        if key is not None and complete(adapter):
            self.adapters[key] = (adapter, keep)


def field_key(field, keep: list) -> tuple:
    """What a ModelField's adapter is built from (see FieldMemo.find), or NotKeyed; `keep` gets what it refers to
    (each class of the annotation followed by its schema, among others)."""
    return (_field_key(field.field_info, keep), _value_key(getattr(field, "mode", None), keep),
            _content_key(getattr(field, "config", None), keep))


def complete(adapter) -> bool:
    """Whether the adapter is built through (a placeholder would be finished later, in place, by whoever uses it)."""
    from pydantic._internal import _mock_val_ser

    if getattr(adapter, "pydantic_complete", True) is not True:  # pydantic 2.10 and later say it
        return False
    parts = [getattr(adapter, name, None) for name in ("_core_schema", "_validator", "_serializer")]
    if parts == [None, None, None]:  # 2.10 and later: no underscore
        parts = [adapter.__dict__.get(name) for name in ("core_schema", "validator", "serializer")]
    return all(p is not None for p in parts) and not any(
        isinstance(p, (_mock_val_ser.MockCoreSchema, _mock_val_ser.MockValSer)) for p in parts)


def _field_key(field_info, keep: list) -> tuple:
    """Every attribute of a FieldInfo (its slots, in their order, then its __dict__'s, by name), its annotation by
    _type_key and the rest by _content_key. (Computed for every field FastAPI builds: kept lean.)"""
    kind = type(field_info)
    keep.append(kind)
    key = [id(kind)]
    for name in _slots_of(kind):
        value = getattr(field_info, name, _MISSING)
        key.append(_type_key(value, keep) if name == "annotation" else _content_key(value, keep))
    for name, value in sorted(getattr(field_info, "__dict__", {}).items()):
        key.append((name, _content_key(value, keep)))
    return tuple(key)


def _slots_of(kind: type, _known: dict = {}) -> tuple[str, ...]:  # noqa: B006 - a cache, by class
    slots = _known.get(kind)
    if slots is None:
        slots = _known[kind] = tuple(name for cls in kind.__mro__ for name in getattr(cls, "__slots__", ()))
    return slots


_MISSING = object()


def _value_key(value, keep: list):
    """Primitives by value (and type: 1, 1.0 and True are equal), tuples by their items, anything else by identity
    (kept alive with the entry)."""
    kind = type(value)
    if kind in _PRIMITIVES:
        return (kind, value)
    if kind is tuple:
        return (tuple, tuple([_value_key(item, keep) for item in value]))
    if _frozen_dataclass(kind):  # annotated_types' constraints (Le(10)): new for each field, equal by their fields
        return (kind, tuple([_value_key(getattr(value, name), keep) for name in kind.__dataclass_fields__]))
    keep.append(value)
    return (id, id(value))


def _frozen_dataclass(kind: type, _known: dict = {}) -> bool:  # noqa: B006 - a cache, by class
    frozen = _known.get(kind)
    if frozen is None:
        params = getattr(kind, "__dataclass_params__", None)
        frozen = _known[kind] = bool(params is not None and params.frozen and "__dataclass_fields__" in kind.__dict__)
    return frozen


def _content_key(value, keep: list):
    """Lists, dicts and sets by their items (recursively), anything else as _value_key. A FieldInfo's containers
    are new for each field FastAPI makes (pydantic's list of constraints, the attributes set, the qualifiers,
    FastAPI's dict of extra JSON schema) and nothing changes them afterwards: the adapter depends on their items."""
    kind = type(value)
    if kind in _PRIMITIVES:
        return (kind, value)
    if kind is dict:
        return (dict, tuple([(_value_key(k, keep), _content_key(v, keep)) for k, v in value.items()]))
    if kind is list:
        return (list, tuple([_content_key(item, keep) for item in value]))
    if kind is set or kind is frozenset:
        return (kind, frozenset([_content_key(item, keep) for item in value]))
    return _value_key(value, keep)


def _type_key(annotation, keep: list):
    if isinstance(annotation, (str, typing.ForwardRef)):
        raise NotKeyed  # resolved in the namespace of the frame that builds the adapter
    origin = typing.get_origin(annotation)
    if origin is None:
        schema = _own_schema(annotation)
        keep.append(annotation)
        keep.append(schema)
        return (type, id(annotation), id(schema))
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        parts = tuple(_value_key(arg, keep) for arg in args)
    elif origin is typing.Annotated:
        parts = (_type_key(args[0], keep),) + tuple(_metadata_key(item, keep) for item in args[1:])
    else:
        parts = tuple(_type_key(arg, keep) for arg in args)
    keep.append(annotation)
    return (_value_key(origin, keep), type(annotation).__name__, parts)


def _metadata_key(item, keep: list):
    from pydantic.fields import FieldInfo

    return _field_key(item, keep) if isinstance(item, FieldInfo) else _value_key(item, keep)


def _own_schema(annotation):
    """The schema pydantic cached on a class (None if it has none); a placeholder means it is not complete."""
    if not isinstance(annotation, type):
        return None
    schema = annotation.__dict__.get("__pydantic_core_schema__")
    if schema is not None:
        from pydantic._internal._mock_val_ser import MockCoreSchema

        if isinstance(schema, MockCoreSchema):
            raise NotKeyed
    return schema


def install() -> FieldMemo | None:
    """Route FastAPI's field adapters through a memo, if this process imported FastAPI already (the warm process
    preloads what the app imported: an app without FastAPI gets no import of it) and its `ModelField` builds its
    adapter the way this expects; the memo, or None (nothing changed)."""
    fields = (getattr(sys.modules.get(name), "ModelField", None) for name in _COMPAT_MODULES)
    field = next((found for found in fields if found is not None), None)
    post_init = getattr(field, "__post_init__", None)
    names = set(getattr(getattr(post_init, "__code__", None), "co_names", ()))
    if not names or "TypeAdapter" not in names or not names <= _POST_INIT_NAMES or getattr(
            post_init, "_unstuck_memo", None) is not None:
        return None
    memo = FieldMemo()

    def __post_init__(self) -> None:
        key, keep, adapter = memo.find(self)
        if adapter is not None:
            self._type_adapter = adapter
        else:
            # FastAPI's own: the adapter is built in its frame, as TypeAdapter expects (its namespace is its caller's).
            post_init(self)
            memo.keep(key, keep, self._type_adapter)
        if memo.seen is not None:
            memo.seen.append((self, keep if key is not None and complete(self._type_adapter) else None))

    __post_init__.__qualname__ = post_init.__qualname__
    __post_init__._unstuck_memo = memo
    field.__post_init__ = __post_init__
    global installed
    installed = memo
    return memo


# Where FastAPI keeps its pydantic-v2 ModelField: fastapi/_compat/v2.py in recent versions, fastapi/_compat.py before.
_COMPAT_MODULES = ("fastapi._compat.v2", "fastapi._compat")
installed: FieldMemo | None = None
