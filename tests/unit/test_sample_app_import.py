"""Importing the sample app (what every reload does) stays as cheap as before the job queue was added: it
opens no connection, even with the stack's URLs set, and loads neither the queue nor the database client
(they are imported by the job routes on first use)."""

import json
import subprocess
import sys

from repo import REPO

PROBE = """
import json, sys
connections = []
sys.addaudithook(lambda event, args: connections.append(repr(args[1])) if event == "socket.connect" else None)
import app.main
print(json.dumps({"connections": connections,
                  "loaded": sorted(m for m in ("psycopg", "redis", "rq") if m in sys.modules)}))
"""


def test_importing_the_sample_app_connects_to_nothing_and_loads_no_queue_or_database_client():
    # Addresses that would be tried at once if anything connected at import time.
    env = {"DATABASE_URL": "postgresql://app:app@127.0.0.1:9/app", "REDIS_URL": "redis://127.0.0.1:9/0",
           "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-c", PROBE], cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {"connections": [], "loaded": []}
