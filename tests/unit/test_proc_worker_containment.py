"""A Procfile worker's wrapper outlives what goes wrong in one of its steps: a command that cannot be started
is an exit retried with the backoff (never "running" with nothing running), and an unexpected error while
handling one event is said once and costs that event only (proc_worker.ProcWorker, with real processes)."""

import json
import queue
import signal

from unstuck import config
from unstuck.procs import proc_release, proc_worker


def worker_in(tmp_path, app_dir, command):
    settings = config.load({"APP_DIR": str(app_dir), "UNSTUCK_RUN_DIR": str(tmp_path)}, check_dirs=False)
    worker = proc_worker.ProcWorker(settings, "w", command)
    worker.state_file.parent.mkdir(exist_ok=True)
    return worker


def test_a_command_that_cannot_start_is_retried_with_backoff_and_shown_as_such(tmp_path):
    worker = worker_in(tmp_path, tmp_path / "gone", "python -m jobs")  # APP_DIR missing: no cwd to start in
    worker.machine.start()  # the wrapper's first step: no exception ends it
    worker.reap()  # first failure: at once (the crash backoff's first step)
    worker.reap()  # second: backing off
    assert worker.machine.state == "backoff" and worker.proc is None
    shown = json.loads(worker.state_file.read_text())
    assert shown["state"] == "backoff" and shown["last_exit"] == 127
    assert shown["last_error"]["headline"].startswith("cannot start 'python -m jobs': No such file or directory")
    (tmp_path / "gone").mkdir()  # fixed: the next try starts it
    worker.machine.restart_at = worker.now()
    worker.machine.on_timers()
    try:
        assert worker.proc is not None and worker.machine.state == "running"
    finally:
        worker.signal(signal.SIGKILL)
        worker.proc.wait(5)
        worker.reap()


def test_an_unexpected_error_handling_an_exit_is_said_once_and_the_worker_is_restarted(tmp_path, capfd,
                                                                                    monkeypatch):
    def broken_parse(lines, app_dir):
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(proc_worker.traceback_text, "parse", broken_parse)
    worker = worker_in(tmp_path, tmp_path, "true; exit 3")
    worker.machine.start()
    for _ in range(2):  # it exits, is restarted at once, exits again
        worker.proc.wait(10)
        worker.reap()
    try:
        out = capfd.readouterr().out
        assert out.count("reading its last lines for a traceback failed (RecursionError") == 1, out
        assert worker.machine.restarts == 2 and worker.last_error["message"] == "exited with code 3"
    finally:
        worker.machine.stop()
        worker.signal(signal.SIGKILL)
        if worker.proc is not None:
            worker.proc.wait(5)
            worker.reap()


def test_a_release_whose_last_lines_cannot_be_read_still_reports_its_exit(tmp_path, monkeypatch):
    """Otherwise the workers, which start once the release has exited, would wait for it forever."""
    def broken_parse(lines, app_dir):
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(proc_release.traceback_text, "parse", broken_parse)
    settings = config.load({"APP_DIR": str(tmp_path)}, check_dirs=False)
    exits = queue.SimpleQueue()
    proc_release.Release(settings, lambda *exit: exits.put(exit)).start("echo Traceback; exit 4")
    code, _, error = exits.get(timeout=10)
    assert code == 4 and "RecursionError" in error
