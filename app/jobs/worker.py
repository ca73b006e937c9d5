"""The sample's job worker, the `worker` entry of app/Procfile: `python -m app.jobs.worker` from /workspace.

It imports the task code before it starts, so a broken save of app/jobs/tasks.py stops it at once with the
error's file and line (unstuck shows them, and starts the worker again once the file is fixed) instead of
failing every job later. SIGTERM is a warm shutdown: the job in hand finishes, then the worker exits.
"""

from __future__ import annotations

import os
import sys

from app.jobs import broker, settings, tasks  # noqa: F401 - tasks: imported for the reason above

LOG_LEVELS = {"critical": "CRITICAL", "error": "ERROR", "warning": "WARNING", "info": "INFO",
              "debug": "DEBUG", "trace": "DEBUG"}


def main() -> int:
    try:
        redis_url = settings.redis_url()
        settings.database_url()
    except settings.NotConfigured as exc:
        print(f"worker: error: {exc}; {settings.START_STACK}", file=sys.stderr)
        return 2
    from redis import Redis
    from redis.exceptions import ConnectionError as RedisConnectionError
    from rq import Queue, Worker

    # RQ runs each job in a child forked from this process: imported here once, the database client is
    # inherited by every job instead of being imported again by each (a few hundred ms).
    import psycopg.types.json  # noqa: F401

    # No socket timeout: the worker blocks on Redis while it waits for jobs (RQ sets its own limit).
    connection = Redis.from_url(redis_url)
    # The scheduler (a child process that puts retries back on the queue) dies when Redis is unreachable
    # for a second or more, and the worker starts it again only from its maintenance step, which RQ runs
    # every 10 minutes, between waits for a job of 6¾ minutes: maintenance every 20 s at most and waits of
    # 25 s (the TTL less 15 s) bring retries back within half a minute of Redis.
    worker = Worker([Queue(broker.QUEUE, connection=connection)], connection=connection,
                    worker_ttl=40, maintenance_interval=20)
    level = LOG_LEVELS.get(os.environ.get("LOG_LEVEL", "info").strip().lower(), "INFO")
    try:
        worker.work(with_scheduler=True, logging_level=level)
    except RedisConnectionError as exc:
        print(f"worker: error: cannot reach Redis at {redis_url}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
