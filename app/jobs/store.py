"""The jobs table in Postgres: the web app creates a row when it enqueues a job and reads it back; the
worker records each attempt and the result.

A connection per call, not a pool: nothing can go stale when Postgres restarts (the next call simply
connects again), and nothing is opened before it is needed. At a sample's traffic a connection costs a few
milliseconds; a real app under load would use psycopg_pool with `check=ConnectionPool.check_connection`.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

from app.jobs import settings

CONNECT_TIMEOUT_S = 3

# Created on first use rather than by a migration tool, to keep the sample self-contained. The advisory
# lock serialises the web app and the worker when both create it at once (CREATE TABLE IF NOT EXISTS
# alone can still collide on the catalog).
SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id uuid PRIMARY KEY,
    text text NOT NULL,
    status text NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    result jsonb,
    error text,
    created_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
)
"""
_schema_ready = False

COLUMNS = ("id", "status", "attempts", "result", "error", "created_at", "finished_at")


@contextmanager
def connection() -> Iterator[Any]:
    """A connection in a transaction, committed when the block ends (rolled back on an exception)."""
    import psycopg  # here, not at import time: see the module docstring of app.jobs

    global _schema_ready
    with psycopg.connect(settings.database_url(), connect_timeout=CONNECT_TIMEOUT_S) as conn:
        if not _schema_ready:
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('app.jobs schema'))")
            conn.execute(SCHEMA)
            conn.commit()
            _schema_ready = True
        yield conn


def create(job_id: str, text: str) -> None:
    with connection() as conn:
        conn.execute("INSERT INTO jobs (id, text, status) VALUES (%s, %s, 'queued')", (job_id, text))


def get(job_id: str) -> dict | None:
    with connection() as conn:
        row = conn.execute(f"SELECT {', '.join(COLUMNS)} FROM jobs WHERE id = %s", (job_id,)).fetchone()
    if row is None:
        return None
    job = dict(zip(COLUMNS, row))
    job["id"] = str(job["id"])
    for stamp in ("created_at", "finished_at"):
        job[stamp] = job[stamp].isoformat() if job[stamp] else None
    return job


def start_attempt(job_id: str) -> None:
    with connection() as conn:
        conn.execute("UPDATE jobs SET status = 'running', attempts = attempts + 1 WHERE id = %s", (job_id,))


def finish(job_id: str, result: dict) -> None:
    from psycopg.types.json import Jsonb

    with connection() as conn:
        conn.execute("UPDATE jobs SET status = 'finished', result = %s, error = NULL, finished_at = now() "
                     "WHERE id = %s", (Jsonb(result), job_id))


def fail(job_id: str, error: str) -> None:
    with connection() as conn:
        conn.execute("UPDATE jobs SET status = 'failed', error = %s, finished_at = now() WHERE id = %s",
                     (error, job_id))
