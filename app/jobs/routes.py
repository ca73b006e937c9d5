"""`POST /jobs` and `GET /jobs/{id}`: enqueue a job, read its status and result back from Postgres.

Every failure to reach a service is a 503 with a JSON body saying what is wrong and what to do (and
Retry-After when it is likely to pass), never a traceback: the stack not started, Postgres or Redis down
or restarting.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from app.jobs import broker, settings, store

router = APIRouter(prefix="/jobs", tags=["jobs"])


class NewJob(BaseModel):
    text: str = Field(max_length=100_000, description="The text whose words the job counts.")
    delay: float = Field(0.0, ge=0, le=30, description="Seconds the job takes, to watch it run.")


def not_configured(exc: Exception) -> JSONResponse:
    return JSONResponse(status_code=503, content={"error": str(exc), "fix": settings.START_STACK})


def unreachable(service: str, exc: Exception) -> JSONResponse:
    detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return JSONResponse(
        status_code=503, headers={"Retry-After": "2"},
        content={"error": f"{service} is unreachable: {detail}",
                 "fix": f"check the {service.lower()} service: docker compose -f compose.yaml "
                        "-f compose.stack.yaml ps (it may be restarting; retry in a moment)"})


def database_errors() -> tuple[type[Exception], ...]:
    import psycopg

    return (psycopg.OperationalError,)


def redis_errors() -> tuple[type[Exception], ...]:
    from redis.exceptions import ConnectionError, TimeoutError

    return (ConnectionError, TimeoutError)


@router.post("", status_code=202)
def create_job(job: NewJob) -> JSONResponse:
    try:
        settings.database_url(), settings.redis_url()
    except settings.NotConfigured as exc:
        return not_configured(exc)
    job_id = str(uuid.uuid4())
    try:
        store.create(job_id, job.text)
    except database_errors() as exc:
        return unreachable("Postgres", exc)
    try:
        broker.enqueue(job_id, job.text, job.delay)
    except redis_errors() as exc:
        try:
            store.fail(job_id, "could not be enqueued: Redis was unreachable")
        except database_errors():
            pass  # the row stays 'queued'; the client has the 503 below
        return unreachable("Redis", exc)
    return JSONResponse(status_code=202, content={"id": job_id, "status": "queued", "url": f"/jobs/{job_id}"})


@router.get("/{job_id}")
def read_job(job_id: uuid.UUID) -> JSONResponse:
    try:
        job = store.get(str(job_id))
    except settings.NotConfigured as exc:
        return not_configured(exc)
    except database_errors() as exc:
        return unreachable("Postgres", exc)
    if job is None:
        return JSONResponse(status_code=404, content={"error": f"no job {job_id}"})
    if job["status"] in ("queued", "running"):
        job.update(broker.progress(job["id"]))
    return JSONResponse(content=job)
