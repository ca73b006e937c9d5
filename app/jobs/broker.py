"""Putting jobs on the Redis queue (RQ). The web app names the task by its dotted path, so it never imports
the task code: the worker does, and a broken task file breaks the worker, not the web app."""

from __future__ import annotations

import functools
from typing import Any

from app.jobs import settings

QUEUE = "default"
TASK = "app.jobs.tasks.count_words"
ON_FAILURE = "app.jobs.tasks.record_failure"
# A job whose database write fails (Postgres restarting, say) is run again after 1, 2, 4, 8 then 15 s:
# half a minute of retries covers a restart. Retries with intervals need the worker's scheduler
# (app/jobs/worker.py starts it).
RETRY_INTERVALS_S = [1, 2, 4, 8, 15]


@functools.cache
def redis() -> Any:
    """One client per process; its connection pool reconnects by itself after Redis restarts."""
    from redis import Redis

    return Redis.from_url(settings.redis_url(), socket_connect_timeout=3, socket_timeout=5)


def enqueue(job_id: str, text: str, delay: float) -> None:
    from rq import Callback, Queue, Retry

    Queue(QUEUE, connection=redis()).enqueue_call(
        TASK, args=(job_id, text, delay), job_id=job_id,
        retry=Retry(max=len(RETRY_INTERVALS_S), interval=RETRY_INTERVALS_S),
        on_failure=Callback(ON_FAILURE), result_ttl=3600, failure_ttl=86400)


def progress(job_id: str) -> dict:
    """What the queue knows of a job the database still calls queued or running: `queue_status` (RQ's:
    `scheduled` while a retry waits, for one), and a failure the worker could not record in the database
    (it was down when the last retry failed). Empty when Redis cannot say."""
    from redis.exceptions import RedisError
    from rq.exceptions import NoSuchJobError
    from rq.job import Job

    try:
        job = Job.fetch(job_id, connection=redis())
        status = job.get_status().value
    except (RedisError, NoSuchJobError, settings.NotConfigured):
        return {}
    if status in ("failed", "stopped", "canceled"):
        lines = (job.exc_info or status).strip().splitlines()
        return {"status": "failed", "queue_status": status, "error": lines[-1] if lines else status}
    return {"queue_status": status}
