"""`unstuck status` exit codes: the HEALTHCHECK's question (serving?) and the two Kubernetes probes ask
(--live: does the reload server run? --ready: does the port answer, with the app or its error page?)."""

import http.server
import socket
import subprocess
import sys
import threading

import pytest

from unstuck import cli, state

QUESTIONS = {"serving": [], "live": ["--live"], "ready": ["--ready"]}


def status(*args: str) -> int:
    return cli.main(["status", "--quiet", *args])


@pytest.fixture
def run_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("UNSTUCK_RUN_DIR", str(tmp_path))
    monkeypatch.delenv("UNSTUCK_RELOADER", raising=False)
    return tmp_path


def publish(run_dir, server_state: str, pid: int | None = None) -> None:
    state.write(run_dir / "state.json", state=server_state, app_module="app.main:app", port=8000)
    if pid is not None:  # state.write records the writer's pid: the reload server's, in the container
        data = state.read(run_dir / "state.json")
        state.write(run_dir / "state.json", **{**data, "pid": pid})


@pytest.mark.parametrize("server_state, serving, live, ready", [
    ("starting", 1, 0, 1),   # nothing answers yet: not ready, but alive
    ("serving", 0, 0, 0),
    ("reloading", 0, 0, 0),  # the previous generation keeps answering
    ("broken", 1, 0, 0),     # the 503 error page answers: ready; restarting would not fix the code
    ("stopping", 1, 0, 1),
])
def test_each_question_by_state(run_dir, server_state, serving, live, ready):
    publish(run_dir, server_state)
    assert (status(), status("--live"), status("--ready")) == (serving, live, ready)


def test_a_dead_reload_server_fails_every_question(run_dir):
    exited = subprocess.Popen([sys.executable, "-c", "pass"])
    exited.wait()
    publish(run_dir, "serving", pid=exited.pid)
    assert [status(*flags) for flags in QUESTIONS.values()] == [1, 1, 1]


def test_json_output_keeps_the_probe_exit_code(run_dir, capsys):
    publish(run_dir, "broken")
    assert cli.main(["status", "--json", "--ready"]) == 0
    assert '"state": "broken"' in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["--liveness"], "unknown option '--liveness'"),
    (["--live", "--ready"], "use one of them"),
])
def test_bad_options_are_one_line_errors(run_dir, capsys, args, message):
    publish(run_dir, "broken")
    assert cli.main(["status", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err


# -- UNSTUCK_RELOADER=uvicorn: no state file, only the port can be asked --------------------------------

@pytest.fixture
def plain_uvicorn(monkeypatch):
    monkeypatch.setenv("UNSTUCK_RELOADER", "uvicorn")

    def on_port(port: int) -> None:
        monkeypatch.setenv("PORT", str(port))

    return on_port


def test_plain_uvicorn_with_a_broken_app_is_live_but_not_ready(plain_uvicorn):
    # uvicorn --reload's parent holds the socket while the app cannot import: connections queue, unanswered.
    with socket.create_server(("127.0.0.1", 0)) as listening:
        plain_uvicorn(listening.getsockname()[1])
        assert (status("--live"), status("--ready"), status()) == (0, 1, 1)


def test_plain_uvicorn_answering_503_is_ready_but_not_serving(plain_uvicorn):
    class Unavailable(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(503)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Unavailable)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        plain_uvicorn(server.server_address[1])
        assert (status("--live"), status("--ready"), status()) == (0, 0, 1)
    finally:
        server.shutdown()
        server.server_close()


def test_plain_uvicorn_with_nothing_listening_fails_every_question(plain_uvicorn):
    with socket.create_server(("127.0.0.1", 0)) as closed:
        port = closed.getsockname()[1]
    plain_uvicorn(port)
    assert [status(*flags) for flags in QUESTIONS.values()] == [1, 1, 1]


def test_status_prints_the_errors_hint():
    from unstuck.cli import format_status
    from unstuck.errors.failure import Failure

    failure = Failure("import", "ModuleNotFoundError", "No module named 'requests'", "app/main.py", 1,
                      hint="add 'requests' to app/requirements.txt; unstuck installs it in place")
    data = {"state": "broken", "app_module": "app.main:app", "port": 8000, "error": failure.headline(),
            "failure": failure.to_dict()}
    lines = format_status(data, now=0).splitlines()
    assert lines[-2:] == ["error:        ModuleNotFoundError: No module named 'requests' (app/main.py:1)",
                          "hint:         add 'requests' to app/requirements.txt; unstuck installs it in place"]
    del data["failure"]["hint"]
    assert "hint" not in format_status(data, now=0)


def test_status_shows_the_release_and_why_the_workers_wait():
    from unstuck.cli import format_status

    base = {"state": "serving", "app": {"import": "main:app"}, "port": 8000}
    failed = {"command": "python manage.py migrate", "state": "failed", "runs": 2, "last": {
        "ok": False, "code": 1, "seconds": 0.42, "at": 100.0, "trigger": "requirements.txt modified",
        "error": "RuntimeError: no such table (migrate.py:9)"}}
    text = format_status({**base, "release": failed}, now=130.0)
    assert ("release:      failed (exit code 1) in 0.4 s, 30 s ago (requirements.txt modified): RuntimeError: "
            "no such table (migrate.py:9); it runs again with the next save") in text.splitlines()
    ok = {**failed, "state": "ok", "last": {**failed["last"], "ok": True, "code": 0, "error": None}}
    assert "release:      ok in 0.4 s, 30 s ago (requirements.txt modified)" in format_status(
        {**base, "release": ok}, now=130.0)
    running = {"command": "python manage.py migrate", "state": "running", "since": 120.0, "runs": 1, "last": None}
    text = format_status({**base, "release": running, "procs_waiting": "they start once the release has exited"},
                         now=130.0)
    assert "release:      running for 10 s: python manage.py migrate" in text
    assert "workers:      they start once the release has exited" in text
    stopping = {**running, "stopping": "it did not exit within 5 s (UNSTUCK_RELEASE_TIMEOUT)"}
    assert ("release:      running for 10 s, stopping it: it did not exit within 5 s (UNSTUCK_RELEASE_TIMEOUT): "
            "python manage.py migrate") in format_status({**base, "release": stopping}, now=130.0).splitlines()
    hung = {**failed, "last": {**failed["last"], "code": -15, "seconds": 5.0, "timed_out": True, "error": (
        "'python manage.py migrate' hung: it did not exit within 5 s and was stopped; set UNSTUCK_RELEASE_TIMEOUT "
        "to give it longer (0: no limit)")}}
    assert ("release:      stopped in 5.0 s, 30 s ago (requirements.txt modified): 'python manage.py migrate' hung: "
            "it did not exit within 5 s and was stopped; set UNSTUCK_RELEASE_TIMEOUT to give it longer (0: no limit); "
            "it runs again with the next save") in format_status({**base, "release": hung}, now=130.0).splitlines()


def test_status_says_which_dependency_set_and_what_was_left_out():
    from unstuck.cli import format_status

    data = {"state": "serving", "port": 8000, "dependency_set": {
        "chosen": "dependency set: requirements/development.txt (the dev set in preference to the production set)",
        "left_out": "left out: requirements.txt, docs/requirements.txt (not the chosen set or below the project root; "
                    "set UNSTUCK_REQUIREMENTS to choose)"}}
    lines = format_status(data, now=0).splitlines()
    assert lines[-2:] == [f"dependencies: {data['dependency_set']['chosen']}",
                          f"dependencies: {data['dependency_set']['left_out']}"]
    assert "dependencies" not in format_status({"state": "serving", "port": 8000, "dependency_set": None}, now=0)


def test_status_says_when_a_fast_path_was_found_wrong_and_what_was_narrowed():
    from unstuck.cli import format_status

    data = {"state": "serving", "app_module": "app.main:app", "port": 8000,
            "fast_path": ["the app layer failed (KeyError: 'x') where a fresh interpreter serves the same code; "
                          "serving the fresh one. The app layer is off until the container restarts.",
                          "the spare failed (ImportError: ...) where ... The warm process no longer imports ..."]}
    assert format_status(data, now=0).splitlines()[-1] == ("fast path:    the spare failed (ImportError: ...) where "
                                                           "... The warm process no longer imports ...")
    assert "fast path" not in format_status({**data, "fast_path": []}, now=0)


def test_status_says_what_the_safety_poll_found():
    from unstuck.cli import format_status

    watcher = {"mode": "inotify", "reason": "/workspace/app is a fakeowner mount, whose changes may not all raise "
               "inotify events", "last_change": None, "safety_poll_ms": 5000, "missed_by_events": 0,
               "first_missed": None}
    data = {"state": "serving", "app_module": "app.main:app", "port": 8000, "watcher": watcher}
    assert "safety poll:  every 5000 ms, no change missed by inotify events so far" in format_status(data, now=0)
    watcher.update(safety_poll_ms=500, missed_by_events=2, first_missed="/workspace/app/main.py")
    assert ("safety poll:  every 500 ms, 2 change(s) no inotify event reported (first: /workspace/app/main.py)"
            in format_status(data, now=0))
    watcher.update(safety_poll_ms=None)  # a local filesystem, or UNSTUCK_POLL_SAFETY_MS=0
    assert "safety poll" not in format_status(data, now=0)


def test_the_private_run_directory_is_never_one_a_symlink_points_at(tmp_path):
    """The /tmp fallback: another user may have planted a link there (to a directory of theirs or ours)."""
    import dataclasses

    from unstuck import config

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    image_dir, fallback = tmp_path / "run", tmp_path / "fallback"
    image_dir.symlink_to(elsewhere)
    fallback.symlink_to(elsewhere)
    settings = dataclasses.replace(config.load({"APP_DIR": str(tmp_path)}, check_dirs=False), run_dir=image_dir)
    with pytest.raises(config.ConfigError, match="is not writable"):
        cli.private_run_dir(settings, fallback)
    fallback.unlink()
    assert cli.private_run_dir(settings, fallback).run_dir == fallback and not fallback.is_symlink()
