"""A job queue for the sample app: `POST /jobs` enqueues a job on Redis (RQ), the worker in app/Procfile runs
it and writes the result to Postgres, `GET /jobs/{id}` reads it back. Needs the services of
compose.stack.yaml; without them the routes answer 503 saying how to start them.

Why RQ (over Celery, Dramatiq or arq): the worker is restarted with the web app on every save, so its start
and stop are on the edit loop. An RQ worker starts in a fraction of a second and its warm shutdown only
waits for the job in hand; Celery's worker takes a few seconds to start its pool and to shut down warm, and
brings a broker/backend configuration for features a sample does not need. RQ also runs each job in a forked
child, so a job that crashes cannot take the worker down, and retries with intervals are built in. Dramatiq
and arq would do too; RQ is the smallest API (enqueue a function by its dotted name) and the best known.

Importing this package (and app.main, which includes its routes) imports neither the queue nor the database
client and connects to nothing: both are imported on first use.
"""
