"""The reload server's hand on the Procfile workers (proc_control.ProcControl): what it asks of supervisord, in
what order, and that a failure in it costs the workers one step, never the reload server. supervisord is a
fake XML-RPC proxy that records each call; the release is a real shell."""

import logging
import queue

import pytest

from unstuck import config
from unstuck.procs.proc_control import ProcControl

PROCFILE = "web: uvicorn app.main:app\nworker: python -m worker\nrelease: echo migrated\n"


class RecordingRpc:
    """supervisord's proxy (`rpc.supervisor.<method>(...)`): every call in order; reloadConfig answers what
    the test sets."""

    def __init__(self):
        self.supervisor = self
        self.calls: queue.SimpleQueue = queue.SimpleQueue()
        self.reload_answer = [[[], ["procs"], []]]  # added, changed, removed

    def __getattr__(self, method):
        def call(*args):
            self.calls.put((method, *args))
            return self.reload_answer if method == "reloadConfig" else True

        return call

    def take(self, n: int) -> list[tuple]:
        return [self.calls.get(timeout=5) for _ in range(n)]

    def nothing_more(self) -> bool:
        return self.calls.empty()


@pytest.fixture
def control(tmp_path):
    (tmp_path / "Procfile").write_text(PROCFILE)
    (tmp_path / "run").mkdir()
    settings = config.load({"APP_DIR": str(tmp_path), "UNSTUCK_RUN_DIR": str(tmp_path / "run")}, check_dirs=False)
    exits: queue.SimpleQueue = queue.SimpleQueue()
    control = ProcControl(settings, lambda *exit: exits.put(exit), rpc=RecordingRpc())
    control.exits = exits
    control.load()
    yield control
    control.close()


def release_runs_and_exits(control) -> tuple:
    exit = control.exits.get(timeout=10)  # the release's thread says so; the reload server hands it back
    control.release_exited(*exit)
    return exit


def started(control) -> RecordingRpc:
    """The first batch: the release has run and the workers were started; supervisord's calls so far taken."""
    control.on_batch("startup")
    release_runs_and_exits(control)
    control.rpc().take(2)
    return control.rpc()


def test_the_release_runs_first_then_the_worker_group_is_started(control):
    control.on_batch("startup")
    assert control.state()["release"]["state"] == "running"
    assert control.state()["procs_waiting"] == "they start once the release has exited"
    assert release_runs_and_exits(control)[0] == 0
    # Started, and restarted where they run already (a reload server supervisord restarted finds them running).
    assert control.rpc().take(2) == [("signalProcessGroup", "procs", "HUP"), ("startProcessGroup", "procs", False)]
    assert control.state()["release"]["state"] == "ok" and control.state()["procs_waiting"] is None


def test_a_procfile_edit_is_rendered_and_applied_as_supervisorctl_update_does(control, tmp_path):
    rpc = started(control)
    (tmp_path / "Procfile").write_text(PROCFILE + "clock: python -m clock\n")
    control.on_batch("app/main.py modified")
    conf = (tmp_path / "run" / "procs.conf").read_text()
    assert "[program:proc-clock]" in conf and "[program:proc-worker]" in conf
    # The group changed: stopped, removed and added again (stopped: autostart=false), then started.
    assert rpc.take(6) == [("reloadConfig",), ("stopProcessGroup", "procs"), ("removeProcessGroup", "procs"),
                           ("addProcessGroup", "procs"), ("signalProcessGroup", "procs", "HUP"),
                           ("startProcessGroup", "procs", False)]


def test_a_broken_procfile_edit_keeps_the_workers_as_they_were_and_says_why(control, tmp_path):
    rpc = started(control)
    (tmp_path / "Procfile").write_text(PROCFILE + "no colon here\n")
    control.on_batch("Procfile modified")
    assert control.error and "Procfile" in control.error
    assert not (tmp_path / "run" / "procs.conf").exists() and rpc.nothing_more()  # nothing re-rendered or re-read
    (tmp_path / "Procfile").write_text(PROCFILE)  # fixed
    control.on_batch("Procfile modified")
    assert control.error is None
    assert rpc.take(1) == [("reloadConfig",)]


def test_a_change_the_workers_cannot_follow_is_logged_once_and_the_reload_server_goes_on(control, tmp_path, caplog):
    rpc = started(control)
    (tmp_path / "run").rename(tmp_path / "run-away")  # procs.conf cannot be written
    (tmp_path / "Procfile").write_text(PROCFILE + "clock: python -m clock\n")
    with caplog.at_level(logging.DEBUG, logger="unstuck"):
        control.on_batch("Procfile modified")  # no exception reaches the reload server's loop
        control.on_batch("app/main.py modified")
    said = [r for r in caplog.records if r.levelno >= logging.ERROR and "Procfile workers" in r.getMessage()]
    assert len(said) == 1 and "FileNotFoundError" in said[0].getMessage(), [r.getMessage() for r in said]
    assert rpc.nothing_more()
    (tmp_path / "run-away").rename(tmp_path / "run")
    control.on_batch("app/main.py modified")  # the edit it could not apply is applied with the next batch
    assert "[program:proc-clock]" in (tmp_path / "run" / "procs.conf").read_text()
    assert rpc.take(1) == [("reloadConfig",)]
