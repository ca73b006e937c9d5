"""FastAPI's analysis of routes kept per endpoint in a warm process (warm/dependant_memo.py): an app built with the
memo serves, documents and analyses exactly what a fresh interpreter's build of it does, while most of its routes'
analyses come from the memo. Run on FastAPI 0.115 (tests/requirements-fastapi-0.115.txt, as mealie pins it: the form
the memo applies to), installed apart from the test venv's own FastAPI by `make`."""

import json
import subprocess
import sys
import textwrap


from fresh_interpreter import on_fastapi_0_115
from repo import REPO

# Routes whose analyses differ only where the memo's key or checks must tell them apart: one endpoint at a path that
# names its parameter and at one that does not; Security scopes at several levels (a list FastAPI shares between
# them) and a router's own dependencies; a body model rebuilt between a route and its copies; a string annotation
# whose name is bound again between a route and its copies; an endpoint whose `__signature__` is set between a route
# and its copies (a class-based view); one `Query` default shared by two parameters of other annotations, whose
# routes are copied in another order than they were made. Every router is included twice.
SHOP = '''
import inspect
from typing import Annotated

from fastapi import APIRouter, Body, Depends, FastAPI, Query, Request, Security
from fastapi.security import OAuth2PasswordBearer, SecurityScopes
from pydantic import BaseModel

oauth = OAuth2PasswordBearer(tokenUrl="token", scopes={"read": "r", "write": "w", "admin": "a"})


def user(scopes: SecurityScopes, token: str = Depends(oauth)):
    return {"scopes": scopes.scopes, "token": token}


def reader(who=Security(user, scopes=["read"])):
    return who


def pager(skip: int = 0, limit: int = Query(10, le=50)):
    return {"skip": skip, "limit": limit}


def item_id_of(item_id: int = 0):  # a path parameter where the path names it, a query parameter elsewhere
    return item_id


class Item(BaseModel):
    name: str


Num = int

items = APIRouter(dependencies=[Depends(pager), Security(user, scopes=["write"])])


def get_item(item_id: int = 0, page=Depends(pager), who=Security(reader, scopes=["admin"]), dep=Depends(item_id_of)):
    return {"item_id": item_id, "page": page, "who": who, "dep": dep}


items.get("/items/{item_id}")(get_item)
items.get("/items")(get_item)


@items.get("/list")
def listing(request: Request, who=Security(user, scopes=["read", "write"]), limit: Annotated[int, Query(ge=1)] = 5):
    return {"path": request.url.path, "who": who, "limit": limit}


@items.post("/items")
def create(item: Item, note: Annotated[str, Body(max_length=5)] = "none"):
    return {"item": item.model_dump(), "note": note}


@items.get("/num")
def num(q: "Num" = 1):
    return {"q": q}


def view_method(self=None, q: int = 1):  # a class-based view's method, as mealie's controllers make them
    return {"q": q, "self": self}


items.get("/cbv")(view_method)

shared = Query(None)  # one default for two parameters of other annotations: FastAPI sets it at each analysis


@items.get("/one")
def one(q: int = shared):
    return {"q": q}


others = APIRouter()


@others.get("/many")  # analysed after /one; its copies are made before /one's (api includes others first)
def many(q: list[int] = shared):
    return {"q": q}


# From here on, a route built from these (every copy below) validates with the new model and reads Num anew.
Item.model_config["str_to_upper"] = True
Item.model_rebuild(force=True)
Num = str
view_method.__signature__ = inspect.signature(view_method).replace(
    parameters=list(inspect.signature(view_method).parameters.values())[1:])  # FastAPI no longer sees `self`

api = APIRouter(prefix="/api", dependencies=[Security(user, scopes=["admin"])])
api.include_router(others)
api.include_router(items)
app = FastAPI()
app.include_router(api)
app.include_router(items, prefix="/again")
'''

REQUESTS = [
    ("get", "/api/items/3?limit=60", None), ("get", "/api/items/3?item_id=9", None), ("get", "/api/items?item_id=9", None),
    ("get", "/again/items/5?skip=2", None), ("get", "/again/items?item_id=x", None),
    ("get", "/api/list?limit=0", None), ("get", "/again/list", None),
    ("post", "/api/items", {"item": {"name": "box"}, "note": "short"}),
    ("post", "/again/items", {"item": {"nam": "box"}, "note": "far too long"}),
    ("get", "/api/num?q=abc", None), ("get", "/again/num?q=abc", None),
    ("get", "/api/cbv?q=2&self=me", None), ("get", "/again/cbv?q=3", None),
    ("get", "/api/one?q=1", None), ("get", "/api/many?q=1&q=2", None),
]

SERVE = '''
import json, re, sys
sys.path[:0] = sys.argv[1:4]
import fastapi  # as the warm process has it: preloaded before the app's own modules
memo = None
if sys.argv[4] == "memo":
    from unstuck.warm import dependant_memo, field_memo
    field_memo.install()
    memo = dependant_memo.install()
    assert memo is not None, "not installed"
assert fastapi.__version__ == "0.115.3", fastapi.__version__
import shop
from starlette.testclient import TestClient
client = TestClient(shop.app, raise_server_exceptions=False)
answers = []
for method, url, body in json.loads(sys.argv[5]):
    r = client.request(method, url, json=body, headers={"Authorization": "Bearer tok"})
    answers.append([url, r.status_code, r.json()])
# What each route was analysed to (its Dependant, every level, the objects it refers to without their addresses).
analyses = [[r.path, sorted(r.methods), re.sub(r" at 0x[0-9a-f]+", "", repr(r.dependant))]
            for r in shop.app.routes if hasattr(r, "dependant")]
print(json.dumps({"openapi": shop.app.openapi(), "answers": answers, "analyses": analyses,
                  "hits": memo and memo.hits, "built": memo and memo.built}))
'''


def served(tmp_path, how: str) -> dict:
    return on_fastapi_0_115(tmp_path, SHOP, SERVE, how, json.dumps(REQUESTS))


def test_an_app_built_with_the_memo_serves_documents_and_analyses_what_a_fresh_interpreter_does(tmp_path):
    fresh = served(tmp_path, "fresh")
    memo = served(tmp_path, "memo")
    assert memo["answers"] == fresh["answers"]
    assert memo["analyses"] == fresh["analyses"]
    assert memo["openapi"] == fresh["openapi"]
    # The routes differ where it matters: what each answered is the route's own analysis, not another's.
    answers = {url: (code, body) for url, code, body in fresh["answers"]}
    assert answers["/api/items/3?item_id=9"][1]["dep"] == 3 and answers["/api/items?item_id=9"][1]["dep"] == 9
    assert answers["/again/items?item_id=x"][0] == 422
    assert answers["/api/list?limit=0"][0] == 422
    assert answers["/again/list"][1]["who"]["scopes"] == ["read", "write"]
    # The routes served are copies include_router made after Item was rebuilt and Num bound again.
    assert answers["/api/items/3?limit=60"][0] == 422
    assert answers["/api/items"] == (200, {"item": {"name": "BOX"}, "note": "short"})
    assert answers["/api/num?q=abc"] == (200, {"q": "abc"})
    assert answers["/api/cbv?q=2&self=me"] == (200, {"q": 2, "self": None})
    assert answers["/api/one?q=1"][0] == 200  # the shared default's annotation: the last analysis's, /one's copy
    # ... and the memo did serve: each copy of a route analysed from it, bar the ones it must not.
    assert memo["hits"] >= 10 and memo["built"] > 0


def test_a_fastapi_whose_analysis_has_another_form_is_left_as_it_is():
    """The test venv's own FastAPI (0.165: a Dependant with other fields, analysed otherwise) gets no memo."""
    out = subprocess.run([sys.executable, "-c", textwrap.dedent('''
        import sys
        sys.path.insert(0, sys.argv[1])
        import fastapi.routing
        from unstuck.warm import dependant_memo
        before = fastapi.routing.get_dependant
        print(fastapi.__version__, dependant_memo.install(), fastapi.routing.get_dependant is before)
        '''), str(REPO / "entrypoint")], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-3000:]
    version, installed, unchanged = out.stdout.split()
    assert not version.startswith("0.115.")
    assert (installed, unchanged) == ("None", "True")
