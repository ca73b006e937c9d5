"""FastAPI's field adapters kept by content in a warm process (warm/field_memo.py): an app built with the memo serves
and documents exactly what a fresh interpreter's build of it does, while most of its adapters come from the memo."""

import json
import sys
import textwrap

import pytest

from fresh_interpreter import on_host
from repo import REPO
from unstuck.warm import field_memo

# Routes that differ only where an adapter is built from: the same annotation with other defaults, constraints,
# aliases, modes; a model rebuilt between two routes (a new schema); each router included twice (the copies
# FastAPI builds again, which the memo serves).
SHOP = '''
from typing import Annotated, Optional

from annotated_types import Le
from fastapi import APIRouter, Body, FastAPI, Query
from pydantic import BaseModel, Field


class Item(BaseModel):
    name: str
    price: float = Field(0, ge=0)
    tags: list[str] = []


class Box(BaseModel):
    value: str


items = APIRouter()


@items.get("/items/{item_id}", response_model=Item)
def get_item(item_id: int, q: int = Query(1, le=10)):
    return Item(name=f"item {item_id} q {q}")


@items.get("/page", response_model=list[Item])
def page(q: int = Query(50, le=100), size: Annotated[int, Query(alias="perPage", ge=1)] = 20):
    return [Item(name=f"page q {q} size {size}")]


@items.get("/maybe")
def maybe(q: Optional[int] = None, flag: bool = False):
    return {"q": q, "flag": flag}


@items.get("/small")
def small(q: Annotated[int, Le(10)] = 1):  # a constraint object of its own, equal to no other
    return {"q": q}


@items.get("/large")
def large(q: Annotated[int, Le(100)] = 1):
    return {"q": q}


@items.post("/items", response_model=Item)
def create(item: Item, note: Annotated[str, Body(max_length=5)] = "none"):
    return item


@items.get("/box/before", response_model=Box)
def box_before():
    return {"value": "seven"}


# The same class, rebuilt: a route built from here on (every copy below) validates with its new schema.
Box.model_config["str_to_upper"] = True
Box.model_rebuild(force=True)


@items.get("/box/after", response_model=Box)
def box_after():
    return {"value": "seven"}


api = APIRouter(prefix="/api")
api.include_router(items)
app = FastAPI()
app.include_router(api)
app.include_router(items, prefix="/again")
'''

REQUESTS = [
    ("get", "/api/items/3?q=5", None), ("get", "/api/items/3?q=60", None), ("get", "/again/items/x", None),
    ("get", "/api/page?q=60&perPage=2", None), ("get", "/api/page?q=500", None), ("get", "/again/page?perPage=0", None),
    ("get", "/api/maybe?q=4&flag=yes", None), ("get", "/again/maybe?q=four", None),
    ("get", "/api/small?q=60", None), ("get", "/api/large?q=60", None), ("get", "/again/large?q=600", None),
    ("post", "/api/items", {"item": {"name": "a", "price": 2}, "note": "short"}),
    ("post", "/again/items", {"item": {"name": "a", "price": -1}, "note": "far too long"}),
    ("get", "/api/box/before", None), ("get", "/api/box/after", None), ("get", "/again/box/after", None),
]

SERVE = '''
import json, sys
sys.path[:0] = [sys.argv[1], sys.argv[2]]
import fastapi
memo = None
if sys.argv[3] == "memo":
    from unstuck.warm import field_memo
    memo = field_memo.install()
    assert memo is not None, "not installed"
import shop
from starlette.testclient import TestClient
client = TestClient(shop.app, raise_server_exceptions=False)
answers = []
for method, url, body in json.loads(sys.argv[4]):
    r = client.request(method, url, json=body)
    answers.append([url, r.status_code, r.json()])
print(json.dumps({"openapi": shop.app.openapi(), "answers": answers, "hits": memo and memo.hits,
                  "built": memo and memo.built}))
'''


def served(tmp_path, how: str) -> dict:
    (tmp_path / "shop.py").write_text(textwrap.dedent(SHOP))
    return on_host(SERVE, str(tmp_path), str(REPO / "entrypoint"), how, json.dumps(REQUESTS))


def test_an_app_built_with_the_memo_serves_and_documents_what_a_fresh_interpreter_does(tmp_path):
    fresh = served(tmp_path, "fresh")
    memo = served(tmp_path, "memo")
    assert memo["answers"] == fresh["answers"]
    assert memo["openapi"] == fresh["openapi"]
    # The routes differ where it matters: what each answered is the route's own rule, not another's.
    codes = {url: code for url, code, _ in fresh["answers"]}
    assert codes["/api/items/3?q=60"] == 422 and codes["/api/page?q=60&perPage=2"] == 200
    assert codes["/api/small?q=60"] == 422 and codes["/api/large?q=60"] == 200
    # The routes served are copies include_router made after Box was rebuilt: none may take the adapter its
    # original was built with, before.
    bodies = {url: body for url, _, body in fresh["answers"]}
    assert bodies["/api/box/before"] == bodies["/api/box/after"] == {"value": "SEVEN"}
    # ... and the memo did serve: every copy of a route (each router is included twice) is built from it.
    assert memo["hits"] >= memo["built"] // 2 > 0


def test_a_field_whose_annotation_is_a_forward_reference_is_not_kept():
    from pydantic.fields import FieldInfo

    class Field:
        field_info = FieldInfo(annotation="Later")
        mode = "validation"

    memo = field_memo.FieldMemo()
    key, _, found = memo.find(Field())
    assert key is None and found is None


def test_a_fastapi_whose_model_field_builds_its_adapter_otherwise_is_left_as_it_is(monkeypatch):
    import fastapi  # noqa: F401 - its ModelField is what install() looks at

    module = next(sys.modules[name] for name in field_memo._COMPAT_MODULES if name in sys.modules)
    original = module.ModelField.__post_init__

    def __post_init__(self):  # builds from something besides the field (never called)
        self._type_adapter = TypeAdapter(registry_lookup(self.field_info))  # noqa: F821

    monkeypatch.setattr(module.ModelField, "__post_init__", __post_init__)
    assert field_memo.install() is None
    assert module.ModelField.__post_init__ is __post_init__
    monkeypatch.setattr(module.ModelField, "__post_init__", original)


@pytest.fixture(autouse=True)
def _no_memo_left(monkeypatch):
    monkeypatch.setattr(field_memo, "installed", None)
