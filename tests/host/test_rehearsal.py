"""A spare rehearses a generation's startup while it waits (worker.rehearse): in a real process on this
machine, it runs through, and leaves no trace the user could see: no output, no listening socket, and
uvicorn's log lines print as before once it is done."""

import os
import subprocess
import sys
import textwrap

from repo import REPO

SCRIPT = textwrap.dedent("""\
    import logging, os, sys
    from unstuck import config
    from unstuck.generation import worker
    settings = config.load(check_dirs=False)
    worker.configure_logging(settings)
    listening_before = open("/proc/self/net/tcp").read().count(" 0A ")  # state 0A: LISTEN
    ok = worker.rehearse(settings)
    listening_after = open("/proc/self/net/tcp").read().count(" 0A ")
    logging.getLogger("uvicorn.error").info("after the rehearsal")
    logging.getLogger("uvicorn.access").info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:1", "GET", "/after", "1.1", 200)
    sys.stderr.flush(); sys.stdout.flush()
    print("RESULT", ok, listening_after - listening_before, flush=True)
""")


def test_a_rehearsal_runs_through_and_leaves_nothing_behind(tmp_path):
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(REPO / "entrypoint"), "APP_DIR": str(tmp_path),
           "UNSTUCK_RUN_DIR": str(tmp_path / "run"), "LOG_LEVEL": "info"}
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "RESULT True 0", done.stdout  # ran through; no socket left listening
    # Nothing of uvicorn's startup, its access line or its shutdown was printed; what comes after prints.
    output = done.stdout + done.stderr
    for quiet in ("Waiting for application startup", "Application startup complete", "GET / HTTP/1.1",
                  "Shutting down", "Application shutdown"):
        assert quiet not in output, output
    assert "after the rehearsal" in done.stderr and "GET /after HTTP/1.1" in done.stdout, output
