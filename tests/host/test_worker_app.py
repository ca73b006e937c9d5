"""A real worker process on this machine, no Docker: it finds the app in APP_DIR, serves a WSGI app on the
inherited socket, and tells the reloader what it loaded (or what it could not find) in its report."""

import json
import os
import select
import signal
import socket
import subprocess
import sys
import textwrap

import httpx
import pytest

from repo import REPO
from unstuck.generation import worker as worker_mod


@pytest.fixture
def worker(listening, tmp_path):
    procs = []

    def start(env: dict | None = None) -> tuple[subprocess.Popen, dict]:
        read_fd, write_fd = os.pipe()
        environ = {"PATH": os.environ["PATH"], "PYTHONPATH": str(REPO / "entrypoint"), "APP_DIR": str(tmp_path),
                   "UNSTUCK_GRACE": "0.5", **(env or {})}
        proc = subprocess.Popen([sys.executable, "-m", "unstuck", "worker", "--listen-fd", str(listening.fileno()),
                                 "--report-fd", str(write_fd), "--parent-pid", str(os.getpid())],
                                pass_fds=(listening.fileno(), write_fd), env=environ)
        procs.append(proc)
        os.close(write_fd)
        reports = os.fdopen(read_fd)
        opened.append(reports)
        start.reports = reports  # what it reports after its outcome, for the tests that read on
        line = reports.readline()
        while line and json.loads(line)["event"] in ("started", "imported"):  # phases; the outcome comes next
            line = reports.readline()
        assert line, f"the worker exited ({proc.wait(timeout=10)}) without reporting"
        return proc, json.loads(line)

    opened = []
    yield start
    for reports in opened:
        reports.close()
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def url(sock: socket.socket) -> str:
    return f"http://127.0.0.1:{sock.getsockname()[1]}/"


def test_worker_finds_and_serves_a_flask_factory_and_reports_it(worker, listening, tmp_path):
    (tmp_path / "app.py").write_text(textwrap.dedent("""\
        from flask import Flask

        def create_app():
            app = Flask(__name__)
            app.add_url_rule("/", "index", lambda: "flask through the worker")
            return app
    """))
    _, report = worker()
    assert report["event"] == "ready"
    assert report["app"] == {"import": "app:create_app()", "reason": "app.py defines the app factory create_app()",
                             "interface": "wsgi"}
    response = httpx.get(url(listening), timeout=10)
    assert (response.status_code, response.text) == (200, "flask through the worker")


def test_worker_with_nothing_to_serve_answers_503_saying_how_to_set_app_module(worker, listening):
    _, report = worker()
    assert report["event"] == "failed" and report["failure"]["exc_type"] == "AppNotFound"
    assert report["app"] == {"import": None, "reason": report["failure"]["message"], "interface": None}
    response = httpx.get(url(listening), timeout=10)
    assert response.status_code == 503
    assert "No app found" in response.text and "set APP_MODULE=package.module:attribute" in response.text


def test_worker_names_what_app_module_points_at_when_it_is_not_an_app(worker, listening, tmp_path):
    (tmp_path / "main.py").write_text("GREETING = 'hello'\n")
    _, report = worker({"APP_MODULE": "main:GREETING"})
    assert report["event"] == "failed" and report["app"]["import"] == "main:GREETING"
    response = httpx.get(url(listening), timeout=10)
    assert response.status_code == 503
    assert "APP_MODULE=main:GREETING is a str ('hello'), not an app" in response.text


def test_the_modules_a_worker_uses_are_reported_after_its_first_answer_not_before(worker, listening, tmp_path):
    # The report that lists them costs milliseconds in a forked child: it must not delay "ready" or the
    # first answer, and must include what the first request imported lazily.
    (tmp_path / "main.py").write_text(textwrap.dedent("""\
        async def app(scope, receive, send):
            if scope["type"] != "http":
                return
            import colorsys  # first imported by the first request
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})
    """))
    _, report = worker()
    assert report["event"] == "ready" and "modules" not in report
    assert httpx.get(url(listening), timeout=10).text == "ok"
    after = []
    while not (after and after[-1]["event"] == "uses" and any(r["event"] == "served" for r in after)):
        ready_to_read, _, _ = select.select([worker.reports], [], [], 30)
        assert ready_to_read, f"no 'served' then 'uses' report within 30 s: {after}"
        after.append(json.loads(worker.reports.readline()))
    served = next(r for r in after if r["event"] == "served")
    assert "modules" not in served
    assert "colorsys" in after[-1]["modules"] and "uvicorn" in after[-1]["modules"]
    assert "main" not in after[-1]["modules"]  # the user's own code is never preloaded...
    # ...but may be, by the app layer (imported by unstuck's loader: no module of the user's started it)
    assert ["main", str(tmp_path / "main.py"), "", True] in after[-1]["app_modules"]
    # Said once: the report due a while after ready (in case no request came) was replaced by this one.
    late, _, _ = select.select([worker.reports], [], [], worker_mod.USES_AFTER_READY_S + 1.0)
    assert not late, worker.reports.readline()


def test_the_thread_pool_of_sync_endpoints_is_started_before_the_first_request(worker, listening, tmp_path):
    # Starting it was ~1.5 ms of each reload's first answer; a generation starts it as soon as it is ready.
    (tmp_path / "main.py").write_text(textwrap.dedent("""\
        import threading
        from starlette.applications import Starlette
        from starlette.responses import PlainTextResponse
        from starlette.routing import Route

        def endpoint(request):  # a sync endpoint: Starlette runs it on anyio's worker thread
            return PlainTextResponse(str(threading.get_native_id()))

        app = Starlette(routes=[Route("/", endpoint)])
    """))
    from waiting import wait_until

    proc, report = worker({"APP_MODULE": "main:app"})
    assert report["event"] == "ready"
    tasks = f"/proc/{proc.pid}/task"
    # Besides the main thread and the output thread (output.py), the pool's.
    before = wait_until("the pool's thread besides the main and the output ones",
                        lambda: (len(os.listdir(tasks)) > 2, os.listdir(tasks)))
    served_by = httpx.get(url(listening), timeout=10).text
    assert served_by in before, f"thread {served_by} was started by the first request; before it: {before}"
