"""Where the job queue's services are: DATABASE_URL and REDIS_URL, which compose.stack.yaml sets."""

from __future__ import annotations

import os

START_STACK = ("start Postgres, Redis and the worker with: "
               "docker compose -f compose.yaml -f compose.stack.yaml up --build (or: make stack)")


class NotConfigured(RuntimeError):
    """A service's URL is not set; str() says which."""


def _required(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise NotConfigured(f"{name} is not set: the job queue needs Postgres and Redis")
    return value


def database_url() -> str:
    return _required("DATABASE_URL")


def redis_url() -> str:
    return _required("REDIS_URL")
