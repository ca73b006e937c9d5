"""The job the worker runs. Edit it while the stack runs: the worker restarts with the web app on each save,
so the next job runs the new code."""

from __future__ import annotations

import logging
import time

from app.jobs import store

log = logging.getLogger(__name__)


def count_words(job_id: str, text: str, delay: float = 0.0) -> dict:
    store.start_attempt(job_id)
    time.sleep(delay)  # stands in for slow work
    result = {"words": len(text.split())}
    store.finish(job_id, result)
    return result


def record_failure(job, connection, exc_type, exc_value, traceback) -> None:
    """RQ's failure callback: once no retry is left, the row says the job failed and why."""
    if job.retries_left:
        return
    try:
        store.fail(job.id, f"{exc_type.__name__}: {exc_value}".splitlines()[0])
    except Exception:  # noqa: BLE001 - the database may be what failed; RQ keeps the job's own error
        log.exception("could not record the failure of job %s", job.id)
