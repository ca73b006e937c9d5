"""A FastAPI route built again from the same arguments, kept whole in a warm process (warm/route_memo.py): an app whose
routers are included without a prefix serves, documents and holds exactly what a fresh interpreter's build of it
does, while the app's copies of its routes come from the memo. Run on FastAPI 0.115 (tests/requirements-fastapi-
0.115.txt, as mealie pins it: the form the memo applies to), installed apart from the test venv's own FastAPI by
`make`."""

import json
import subprocess
import sys
import textwrap


from fresh_interpreter import on_fastapi_0_115
from repo import REPO

# An /api router (a dependency of its own) including an items router, then included by the app without a prefix: the
# app's routes are built with exactly the arguments of /api's, for another app. Between the two includes, what must
# tell a route from the one built before changes: a response model rebuilt, an endpoint's `__signature__` set (a
# class-based view), an endpoint's docstring and a name a string return annotation resolves to (a copy takes the
# description and model /api's route read, as include_router passes them). A route class of the app's own
# makes its handler; a counter names one router's routes (a unique-id function of the app's); the app overrides a
# dependency (a route's handler is the app's); and after the include, the app's routes get a tag of their own, before
# a second app includes /api.
SHOP = '''
import inspect
from typing import Annotated

from fastapi import APIRouter, Body, Depends, FastAPI, Header
from fastapi.routing import APIRoute
from pydantic import BaseModel


def who(x_user: Annotated[str, Header()] = "anon"):
    return x_user


def api_key(x_key: Annotated[str, Header()] = "none"):
    return x_key


class Item(BaseModel):
    name: str


class Missing(BaseModel):
    detail: str


class Stamped(APIRoute):
    """A route class of the app's own: its handler stamps each answer."""

    def get_route_handler(self):
        handler = super().get_route_handler()

        async def stamped(request):
            response = await handler(request)
            response.headers["x-route"] = self.path_format
            return response

        return stamped


Label = str
items = APIRouter(prefix="/items", tags=["items"], route_class=Stamped)


@items.get("/{item_id}", response_model=Item, responses={404: {"model": Missing}})
def read(item_id: int, user=Depends(who)):
    """Read an item."""
    return {"name": f"item {item_id} for {user}"}


@items.post("")
def create(item: Item, note: Annotated[str, Body(max_length=9)] = "none") -> Item:
    return Item(name=item.name + " " + note)


@items.get("/label/{text}")
def label(text: str) -> "Label":
    return text


def view_method(self=None, q: int = 1):  # a class-based view's method, as mealie's controllers make them
    return {"q": q, "self": self}


items.get("/views/cbv", operation_id="cbv")(view_method)


@items.get("/views/doc")
def doc():
    """First words."""
    return {"doc": True}


@items.get("/views/plain/{n}", responses={404: {"model": Missing}})
def plain(n: int, user=Depends(who)) -> dict[str, str]:
    return {"n": str(n), "user": user}


count = [0]


def numbered(route):
    count[0] += 1
    return f"{route.name}-{count[0]}"


counted = APIRouter(prefix="/counted", generate_unique_id_function=numbered)


@counted.get("/one")
def one():
    return {"one": 1}


api = APIRouter(prefix="/api", dependencies=[Depends(api_key)])
api.include_router(items)
api.include_router(counted)

# From here on, a route built from these (the app's copies below) reads them anew.
Item.model_config["str_to_upper"] = True
Item.model_rebuild(force=True)
view_method.__signature__ = inspect.signature(view_method).replace(
    parameters=list(inspect.signature(view_method).parameters.values())[1:])  # FastAPI no longer sees `self`
doc.__doc__ = "Other words."
Label = int

app = FastAPI()
app.include_router(api)
app.dependency_overrides[who] = lambda: "overridden"
for route in app.routes:
    if isinstance(route, APIRoute):
        route.tags.append("app")
second = FastAPI()  # a second app including /api: its copies are the memo's too
second.include_router(api)
'''

REQUESTS = [
    ("get", "/api/items/3", None), ("post", "/api/items", {"item": {"name": "box"}, "note": "red"}),
    ("post", "/api/items", {"item": {"name": "box"}, "note": "far too long"}), ("get", "/api/items/label/7", None),
    ("get", "/api/items/label/x", None), ("get", "/api/items/views/cbv?q=2&self=me", None),
    ("get", "/api/counted/one", None),
    ("get", "/api/items/views/plain/4", None),
]

SERVE = '''
import json, re, sys
sys.path[:0] = sys.argv[1:4]
import fastapi  # as the warm process has it: preloaded before the app's own modules
memo = None
if sys.argv[4] == "memo":
    from unstuck.warm import dependant_memo, field_memo, route_memo
    field_memo.install()
    dependant_memo.install()
    memo = route_memo.install()
    assert memo is not None, "not installed"
assert fastapi.__version__ == "0.115.3", fastapi.__version__
import shop
from starlette.testclient import TestClient
client = TestClient(shop.app, raise_server_exceptions=False)
answers = []
for method, url, body in json.loads(sys.argv[5]):
    r = client.request(method, url, json=body, headers={"x-user": "ann", "x-key": "k1"})
    answers.append([url, r.status_code, r.json(), r.headers.get("x-route")])
# What each route holds (the app's and /api's: the app's copies must not share what the app changes afterwards).
routes = [[where, r.path, sorted(r.methods), r.tags, r.unique_id, r.description, type(r).__name__,
           re.sub(r" at 0x[0-9a-f]+", "", repr(r.dependant))]
          for where, router in (("app", shop.app.router), ("api", shop.api), ("second", shop.second.router))
          for r in router.routes if hasattr(r, "dependant")]
print(json.dumps({"openapi": shop.app.openapi(), "answers": answers, "routes": routes,
                  "hits": memo and memo.hits, "built": memo and memo.built}))
'''


def served(tmp_path, how: str) -> dict:
    return on_fastapi_0_115(tmp_path, SHOP, SERVE, how, json.dumps(REQUESTS))


def test_an_app_including_its_routers_without_a_prefix_serves_what_a_fresh_interpreter_does(tmp_path):
    fresh = served(tmp_path, "fresh")
    memo = served(tmp_path, "memo")
    assert memo["answers"] == fresh["answers"]
    assert memo["routes"] == fresh["routes"]
    assert memo["openapi"] == fresh["openapi"]
    answers = {url: (code, body, stamp) for url, code, body, stamp in fresh["answers"]}
    # The app's own handlers: its dependency override, its route class (a route built anew, and one from the memo).
    assert answers["/api/items/3"] == (200, {"name": "ITEM 3 FOR OVERRIDDEN"}, "/api/items/{item_id}")
    assert answers["/api/items/views/plain/4"] == (200, {"n": "4", "user": "overridden"}, "/api/items/views/plain/{n}")
    # Built after the changes between the includes: the rebuilt model, the signature set.
    assert fresh["answers"][1][1:3] == [200, {"name": "BOX RED"}] and fresh["answers"][2][1] == 422
    assert answers["/api/items/views/cbv?q=2&self=me"][1] == {"q": 2, "self": None}
    assert answers["/api/items/label/x"][:2] == (200, "x")  # include_router passes the model /api's route resolved
    routes = {(where, path): (tags, unique_id, description) for where, path, _, tags, unique_id, description, *_ in
              fresh["routes"]}
    assert routes[("app", "/api/items/views/doc")][2] == "First words."  # include_router passes /api's description
    assert routes[("api", "/api/items/views/plain/{n}")][0] == ["items"]  # the app's tag: on the app's routes only
    assert routes[("second", "/api/items/views/plain/{n}")][0] == ["items"]
    assert routes[("app", "/api/counted/one")][1] != routes[("api", "/api/counted/one")][1]
    # ... and the memo did serve: the app's copies of the routes whose arguments and checks are the same.
    assert memo["hits"] >= 4 and memo["built"] > memo["hits"]


def test_a_fastapi_whose_routes_have_another_form_is_left_as_it_is():
    """The test venv's own FastAPI (0.165: APIRoute takes other arguments) gets no memo."""
    out = subprocess.run([sys.executable, "-c", textwrap.dedent('''
        import sys
        sys.path.insert(0, sys.argv[1])
        import fastapi.routing
        from unstuck.warm import dependant_memo, field_memo, route_memo
        field_memo.install()
        dependant_memo.install()
        before = fastapi.routing.APIRoute.__init__
        print(fastapi.__version__, route_memo.install(), fastapi.routing.APIRoute.__init__ is before)
        '''), str(REPO / "entrypoint")], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-3000:]
    version, installed, unchanged = out.stdout.split()
    assert not version.startswith("0.115.")
    assert (installed, unchanged) == ("None", "True")
