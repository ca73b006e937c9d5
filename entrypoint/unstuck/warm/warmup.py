"""Pay the frameworks' first-use costs once, in the warm process, instead of in every reload.

The first FastAPI route a process defines costs tens of milliseconds more than the next ones: pydantic
builds its schema machinery, FastAPI imports and caches what its dependency analysis needs. A reload
forked from a warm process that has only *imported* FastAPI pays that again in the user's import (about
45 of the sample app's 60 ms). Defining a throwaway app here, with the shapes real apps use (path and
query parameters, a body model, a response model), moves that cost out of every reload. No user code
runs, nothing is served, and no thread is started (the warm process must stay safe to fork).
"""

import sys

# No `from __future__ import annotations` here: the throwaway models and routes are local, and their
# annotations must be real objects when FastAPI and pydantic read them.


def _pydantic() -> None:
    from pydantic import BaseModel, Field

    class Item(BaseModel):
        name: str = Field(min_length=1)
        price: float
        tags: list[str] = []
        note: str | None = None

    Item.model_validate({"name": "x", "price": 1.0})
    Item(name="y", price=2).model_dump_json()


def _fastapi() -> None:
    from fastapi import APIRouter, Depends, FastAPI, Query
    from pydantic import BaseModel

    class Body(BaseModel):
        text: str
        count: int = 1

    class Out(BaseModel):
        id: int
        text: str | None = None

    def dependency(limit: int = Query(10, ge=1)) -> int:
        return limit

    router = APIRouter(prefix="/items")

    @router.get("/{item_id}", response_model=Out)
    def read(item_id: int, q: str | None = None, limit: int = Depends(dependency)) -> Out:
        return Out(id=item_id)

    @router.post("/", status_code=201)
    async def create(body: Body) -> Out:
        return Out(id=1, text=body.text)

    app = FastAPI()
    app.include_router(router)

    @app.get("/")
    def index() -> dict:
        return {}

    app.openapi()


def _flask() -> None:
    from flask import Flask

    app = Flask("unstuck_warmup")

    @app.route("/<int:item_id>")
    def read(item_id):
        return {"id": item_id}


def _litestar() -> None:
    from litestar import Litestar, get

    @get("/")
    async def index() -> dict:
        return {}

    Litestar(route_handlers=[index])


def _sqlalchemy() -> None:
    # A model of its own registry (never the app's, nor SQLModel's shared metadata) on an in-memory
    # SQLite database, closed at the end: the mapper, DDL, unit-of-work and select compilers' lazy imports
    # and caches, ~10 ms of the first reload's import and first query otherwise.
    from sqlalchemy import Integer, String, create_engine, select
    from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
    from sqlalchemy.pool import StaticPool

    class Base(DeclarativeBase):
        pass

    class Row(Base):
        __tablename__ = "unstuck_warmup"
        id: Mapped[int] = mapped_column(Integer, primary_key=True)
        name: Mapped[str] = mapped_column(String(20))

    engine = create_engine("sqlite://", poolclass=StaticPool)
    try:
        Base.metadata.create_all(engine)
        with Session(engine) as session:
            session.add(Row(name="x"))
            session.commit()
            list(session.scalars(select(Row).where(Row.name == "x")))
    finally:
        engine.dispose()
        Base.registry.dispose()


def _pandas() -> None:
    # A frame's first construction imports and initialises much of pandas lazily.
    import pandas

    frame = pandas.DataFrame([{"a": 1, "b": "x"}, {"a": 2, "b": "y"}])
    frame.to_dict("records")


def _jinja2() -> None:
    # Template() builds (and caches) a shared environment whose lexer compiles its regular expressions.
    from jinja2 import Template

    Template("<b>{{ m }}</b>{% for i in x %}{{ i }}{% endfor %}").render(m=1, x=[1])


WARMUPS = {"fastapi": _fastapi, "pydantic": _pydantic, "flask": _flask, "litestar": _litestar,
           "sqlalchemy": _sqlalchemy, "pandas": _pandas, "jinja2": _jinja2}


def _serve_one(app, path: str) -> None:
    """One GET through an ASGI app, on the event loop uvicorn will use (uvloop when installed)."""
    import asyncio

    async def request() -> None:
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
                 "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
                 "headers": [(b"host", b"unstuck")], "client": ("127.0.0.1", 0), "server": ("127.0.0.1", 0),
                 "state": {}}

        async def receive() -> dict:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message) -> None:
            pass

        await app(scope, receive, send)

    try:
        import uvloop

        factory = uvloop.new_event_loop
    except ImportError:
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(request())


def _fastapi_request() -> None:
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/sync")
    def sync_route(q: int = 0) -> dict:
        return {"q": q}

    @app.get("/async")
    async def async_route() -> dict:
        return {}

    _serve_one(app, "/sync")  # a sync route: anyio's thread pool
    _serve_one(app, "/async")


# Run in a worker forked ahead of its request (a spare or an app layer; a layer is forked again, for its copy,
# only once no thread is left: layer_successor.runs_one_thread; anyio's ends with its loop), on
# the code paths the first request will take: without them, a new generation's first answer takes about
# 10 ms more than the next ones.
REQUEST_WARMUPS = {"fastapi": _fastapi_request}


def run_requests() -> list[str]:
    return _each(REQUEST_WARMUPS)


def _each(table: dict) -> list[str]:
    """Run the warm-up of every framework the app has imported (it is in sys.modules after the preload);
    return their names. One that fails is skipped: it only costs the next reload the time it would save."""
    done = []
    for name, warm in table.items():
        if name not in sys.modules:
            continue
        try:
            warm()
            done.append(name)
        except Exception:  # noqa: BLE001 - never a reason for the warm process or the spare to fail
            continue
    return done


def run() -> list[str]:
    return _each(WARMUPS)
