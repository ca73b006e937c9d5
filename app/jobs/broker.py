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
