"""The realistic benchmark app: the shape of a small production API (settings, SQL models, CRUD, a dozen
routers, token auth), modelled on the FastAPI full-stack template's backend. The bench edits the message
of the root route below to time each reload."""

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import sentry_sdk
from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from app.api.main import api_router
from app.core.config import settings
from app.core.db import create_tables, engine
from app.crud.seed import seed

log = logging.getLogger("app")

if settings.SENTRY_DSN and settings.ENVIRONMENT != "local":
    sentry_sdk.init(dsn=str(settings.SENTRY_DSN), traces_sample_rate=0.1, environment=settings.ENVIRONMENT)


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    create_tables()
    with Session(engine) as session:
        seed(session)
    yield
    engine.dispose()


def operation_id(route: APIRoute) -> str:
    # Stable, readable operation ids for generated API clients: "<tag>-<function name>".
    return f"{route.tags[0]}-{route.name}" if route.tags else route.name


app = FastAPI(title=settings.PROJECT_NAME, openapi_url=f"{settings.API_V1_STR}/openapi.json",
              generate_unique_id_function=operation_id, lifespan=lifespan)

if settings.all_cors_origins:
    app.add_middleware(CORSMiddleware, allow_origins=settings.all_cors_origins, allow_credentials=True,
                       allow_methods=["*"], allow_headers=["*"])


@app.middleware("http")
async def server_timing(request: Request, call_next):
    started = time.perf_counter()
    response = await call_next(request)
    response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
    return response


@app.exception_handler(IntegrityError)
async def conflict(_: Request, exc: IntegrityError) -> JSONResponse:
    # A uniqueness or foreign-key violation the routes did not foresee is the client's conflict, not a 500.
    log.warning("integrity error: %s", exc.orig)
    return JSONResponse({"detail": "conflicts with existing data"}, status_code=409)


app.include_router(api_router, prefix=settings.API_V1_STR)


@app.get("/")
def index() -> dict:
    return {"message": "Hello from unstuck", "service": settings.PROJECT_NAME, "docs": "/docs",
            "api": settings.API_V1_STR}
