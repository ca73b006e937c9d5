"""Procfile workers without processes: the Procfile format, each worker's state machine, the traceback
found in its output, and the supervisord programs rendered for them."""

import os
import queue
import signal
import subprocess
import time
from pathlib import Path

import pytest
from supervisor.options import ServerOptions
from supervisor.process import Subprocess

from unstuck import config
from unstuck.procs import proc_worker, procfile
from unstuck.supervision import supervisord_conf
from unstuck.errors import traceback_text
from unstuck.procs.proc_plan import ProcPlan
from unstuck.procs.proc_release import Release
from unstuck.procs.proc_states import BACKOFF, RUNNING, STOPPED, STOPPING, ProcMachine

TERM, KILL = signal.SIGTERM, signal.SIGKILL


# -- Procfile --------------------------------------------------------------------------------------

def test_procfile_entries_other_than_web_are_workers(tmp_path):
    path = tmp_path / "Procfile"
    path.write_text("# the stack\nweb: uvicorn app.main:app\n\nworker: celery -A app.tasks worker -l info\n"
                    "beat:celery -A app.tasks beat\n")
    assert procfile.workers(path) == [procfile.Proc("worker", "celery -A app.tasks worker -l info"),
                                      procfile.Proc("beat", "celery -A app.tasks beat")]
    assert procfile.workers(tmp_path / "missing") == []


@pytest.mark.parametrize("text, message", [
    ("worker celery -A app worker\n", "Procfile:1: 'worker celery -A app worker' is not 'name: command'"),
    ("w: a\nw: b\n", "Procfile:2: 'w' is defined twice"),
])
def test_a_bad_procfile_is_one_line_naming_the_line(text, message):
    with pytest.raises(procfile.ProcfileError) as error:
        procfile.parse(text)
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


def supervisord_reads(tmp_path, procs, **env):
    """The Procfile workers as supervisord itself reads the rendered config (its ServerOptions, with the
    [include] of procs.conf): {program name: (its config, the argv it would exec)}."""
    settings = config.load({"APP_DIR": str(tmp_path), "UNSTUCK_RUN_DIR": str(tmp_path), **env}, check_dirs=False)
    conf = tmp_path / "supervisord.conf"
    conf.write_text(supervisord_conf.render(settings, "secret"))
    (tmp_path / "procs.conf").write_text(supervisord_conf.render_procs(settings, procs))
    options = ServerOptions()
    options.realize(args=["-c", str(conf)])
    groups = {group.name: group for group in options.process_group_configs}
    # Subprocess.get_execv_args is how supervisord splits `command=` before it execs it.
    return groups, {p.name: (p, Subprocess(p).get_execv_args()[1])
                    for p in groups[supervisord_conf.PROCS_GROUP].process_configs}


def test_workers_are_rendered_as_one_supervisord_group_that_supervisord_can_parse(tmp_path):
    procs = [procfile.Proc("worker", "celery -A app.tasks worker --loglevel=info"),
             procfile.Proc("clock", "python -c 'print(\"100%\")'")]
    groups, programs = supervisord_reads(tmp_path, procs, UNSTUCK_WORKER_GRACE="7")
    assert [p.name for p in groups["procs"].process_configs] == ["proc-worker", "proc-clock"]
    assert groups["procs"].priority == 900
    assert programs["proc-worker"][0].stopwaitsecs == 10
    # supervisord does not start them with itself: the reload server does, once the dependencies are in.
    assert not programs["proc-worker"][0].autostart
    for proc in procs:  # the wrapper gets the line as written
        argv = programs[supervisord_conf.program_name(proc.name)][1]
        assert argv[1:4] == ["-m", "unstuck", "proc"]
        assert proc_worker.parse_args(argv[4:]) == (proc.name, proc.command)
    assert supervisord_conf.render_procs(settings_for(tmp_path), []).startswith(";")


def test_the_wrapper_takes_the_line_as_written_or_encoded_and_nothing_else():
    line = "python -c 'print(1)' ; echo $HOME  # two"
    assert proc_worker.parse_args(["w", line]) == ("w", line)
    assert proc_worker.parse_args(["w", proc_worker.ENCODED, proc_worker.encode_command(line)]) == ("w", line)
    assert proc_worker.parse_args(["w", proc_worker.ENCODED, "not base64!"]) is None
    assert proc_worker.parse_args(["w"]) is None


def settings_for(tmp_path):
    return config.load({"APP_DIR": str(tmp_path)}, check_dirs=False)


# What a shell prints for each line: ` ;` and ` #` are not comments to it, quotes are its own, `%` is plain.
SHELL_LINES = [
    ("python3 -c 'print(1)' ; python3 -c 'print(2)'  # two steps", "1\n2\n"),
    ("echo \"100%\" && echo 'a ; b # c' #x", "100%\na ; b # c\n"),
    ("echo $GREETING ${GREETING}s \"$GREETING\"", "hi his hi\n"),
    ("printf '%s\\n' '%(ENV_HOME)s' 50%", "%(ENV_HOME)s\n50%\n"),
    ("python3 -c \"import sys; print(sys.argv[1:])\" 'one two' three", "['one two', 'three']\n"),
]


@pytest.mark.parametrize("line, printed", SHELL_LINES)
def test_a_procfile_line_runs_exactly_as_a_shell_runs_it(tmp_path, line, printed):
    parsed = procfile.parse(f"web: gunicorn app:app\nstep: {line}\n")
    _, programs = supervisord_reads(tmp_path, procfile.workers_of(parsed))
    name, command = proc_worker.parse_args(programs["proc-step"][1][4:])
    env = {"PATH": os.environ["PATH"], "GREETING": "hi"}
    ran = subprocess.run(proc_worker.shell_command(command), env=env, capture_output=True, text=True, timeout=30)
    assert (name, ran.stdout, ran.returncode) == ("step", printed, 0), ran.stderr
    # and the same as a shell reading the line itself
    assert ran.stdout == subprocess.run(["/bin/sh", "-c", line], env=env, capture_output=True, text=True).stdout


# -- a worker's state machine ------------------------------------------------------------------------

class FakeOps:
    def __init__(self):
        self.t = 0.0
        self.spawns = 0
        self.signals = []

    def now(self):
        return self.t

    def spawn(self):
        self.spawns += 1

    def signal(self, signum):
        self.signals.append(signum)


@pytest.fixture
def ops():
    return FakeOps()


@pytest.fixture
def m(ops):
    machine = ProcMachine(ops, grace=5.0, backoff_max=10.0)
    machine.start()
    return machine


def advance(m, ops, seconds):
    ops.t += seconds
    m.on_timers()


def test_a_worker_that_exits_is_restarted_with_backoff_never_given_up(m, ops):
    assert m.state == RUNNING and ops.spawns == 1
    m.exited(1)  # first crash: at once
    assert ops.spawns == 2
    for expected in (1, 2, 4, 8, 10, 10):
        m.exited(1)
        assert m.state == BACKOFF and m.restart_delay == expected
        advance(m, ops, expected)
        assert m.state == RUNNING
    assert m.restarts == 7


def test_a_worker_that_ran_long_enough_restarts_at_once(m, ops):
    for _ in range(3):
        m.exited(1)
        advance(m, ops, 10)
    advance(m, ops, 30)
    spawns = ops.spawns
    m.exited(-KILL)
    assert m.state == RUNNING and ops.spawns == spawns + 1


def test_a_save_restarts_it_gracefully_then_at_once(m, ops):
    m.restart()
    assert m.state == STOPPING and ops.signals == [TERM] and ops.spawns == 1
    m.exited(0)
    assert m.state == RUNNING and ops.spawns == 2 and m.restarts == 0 and m.reloads == 1


def test_a_save_during_backoff_starts_it_without_waiting(m, ops):
    m.exited(1)
    m.exited(1)
    assert m.state == BACKOFF
    m.restart()
    assert m.state == RUNNING and m.backoff.crashes == 0


def test_a_worker_that_ignores_sigterm_is_killed_after_the_grace(m, ops):
    m.restart()
    advance(m, ops, 4.9)
    assert ops.signals == [TERM]
    advance(m, ops, 0.2)
    assert ops.signals == [TERM, KILL]
    m.exited(-KILL)
    assert m.state == RUNNING  # and started again: it was a restart


@pytest.mark.parametrize("where", ["running", "backoff", "stopping"])
def test_stop_ends_it_in_every_state_and_nothing_starts_after(m, ops, where):
    if where == "backoff":
        m.exited(1)
        m.exited(1)
    elif where == "stopping":
        m.restart()
    m.stop()
    if m.state == STOPPING:
        m.exited(-TERM)
    spawns = ops.spawns
    advance(m, ops, 60)
    m.restart()
    assert m.state == STOPPED and m.finished and ops.spawns == spawns


# -- tracebacks in a worker's output -------------------------------------------------------------------

def test_the_users_file_and_line_are_found_in_a_printed_traceback(tmp_path):
    lines = ["worker: Warm shutdown", "Traceback (most recent call last):",
             '  File "/opt/unstuck/venv/lib/python3.11/site-packages/celery/app/base.py", line 12, in loader',
             '  File "/workspace/app/tasks.py", line 7, in <module>',
             "    import not_installed",
             '  File "/opt/unstuck/venv/lib/python3.11/site-packages/importlib/__init__.py", line 3, in x',
             "ModuleNotFoundError: No module named 'not_installed'"]
    failure = traceback_text.parse(lines, "/workspace")
    assert (failure.exc_type, failure.file, failure.line) == ("ModuleNotFoundError", "app/tasks.py", 7)
    assert failure.headline() == "ModuleNotFoundError: No module named 'not_installed' (app/tasks.py:7)"


def test_a_syntax_error_names_the_bad_line():
    lines = ["Traceback (most recent call last):", '  File "/x/celery.py", line 2, in main',
             '  File "/workspace/app/tasks.py", line 12', "    def broken(:", "               ^",
             "SyntaxError: invalid syntax"]
    failure = traceback_text.parse(lines, "/workspace")
    assert (failure.exc_type, failure.file, failure.line, failure.message) == (
        "SyntaxError", "app/tasks.py", 12, "invalid syntax")


def test_no_traceback_no_failure():
    assert traceback_text.parse(["worker ready", "Killed"], "/workspace") is None


def test_a_worker_is_starting_until_it_has_run_a_second(m, ops):
    assert m.shown_state() == "starting" and m.next_deadline() == 1.0
    advance(m, ops, 1.0)
    assert m.shown_state() == "running" and m.next_deadline() is None


def test_a_simple_command_is_execed_by_the_shell_and_a_compound_one_is_not():
    from unstuck.procs.proc_worker import shell_command

    assert shell_command("python -m app.jobs.worker") == ["/bin/sh", "-c", "exec python -m app.jobs.worker"]
    assert shell_command("cd app && celery worker") == ["/bin/sh", "-c", "cd app && celery worker"]
    assert shell_command("FOO=1 rq worker")[2] == "FOO=1 rq worker"


# -- release and the workers' (re)starts (proc_plan) ------------------------------------------------------

class PlanOps:
    def __init__(self):
        self.t = 0.0
        self.calls = []

    def now(self):
        return self.t

    def wall(self):
        return 1_700_000_000.0 + self.t

    def run_release(self, command):
        self.calls.append(("release", command))

    def signal_release(self, signum):
        self.calls.append(("signal", signum))

    def apply_procfile(self):
        self.calls.append("apply")

    def start_workers(self):
        self.calls.append("start")

    def restart_workers(self):
        self.calls.append("restart")


MIGRATE = "python manage.py migrate"


@pytest.fixture
def plan_ops():
    return PlanOps()


@pytest.fixture
def plan(plan_ops):
    return ProcPlan(plan_ops, MIGRATE, ("worker",))


def test_release_runs_first_and_the_workers_start_once_it_has_exited(plan, plan_ops):
    plan.request("startup")
    assert plan_ops.calls == [("release", MIGRATE)] and plan.waiting() == "they start once the release has exited"
    assert plan.snapshot()["state"] == "running"
    plan_ops.t += 1.5
    plan.release_exited(0, 1.5)
    assert plan_ops.calls == [("release", MIGRATE), "start"] and plan.waiting() is None
    assert plan.snapshot()["state"] == "ok" and plan.snapshot()["last"]["seconds"] == 1.5
    # A save restarts the workers; a release that succeeded is not run again for it.
    plan.request("app/tasks.py modified")
    assert plan_ops.calls[2:] == ["restart"] and plan.runs == 1


def test_nothing_starts_while_the_dependencies_install_then_release_then_workers(plan, plan_ops):
    plan.install_started()
    plan.request("app/main.py modified")  # a save during the first install
    plan.settle()
    assert plan_ops.calls == [] and plan.waiting() == "they start once the dependencies are installed"
    plan.installed(ok=True)
    plan.settle()  # no request came with the outcome: the deferred one is served
    assert plan_ops.calls == [("release", MIGRATE)]
    plan.release_exited(0, 0.4)
    assert plan_ops.calls[1:] == ["start"]


def running_then_installed(plan):
    """Workers started after a release that succeeded, then an install that succeeded."""
    plan.request("startup")
    plan.release_exited(0, 1.0)
    plan.install_started()
    plan.installed(ok=True)


def test_each_successful_install_runs_the_release_again_before_the_restart(plan, plan_ops):
    running_then_installed(plan)
    plan.request("dependencies installed from requirements.txt")
    assert plan_ops.calls[2:] == [("release", MIGRATE)]
    plan.release_exited(0, 1.0)
    assert plan_ops.calls[3:] == ["restart"]
    # A failed install changed nothing: no release, the workers restart with the app if it restarts.
    plan.install_started()
    plan.installed(ok=False)
    plan.request("app/main.py modified")
    assert plan_ops.calls[4:] == ["restart"] and plan.runs == 2


def test_a_failing_release_is_shown_never_restarted_by_itself_and_runs_again_on_the_next_save(plan, plan_ops):
    plan.request("startup")
    plan.release_exited(3, 0.2, "django.db.utils.OperationalError: no such table: app_job (app/models.py:4)")
    snapshot = plan.snapshot()
    assert snapshot["state"] == "failed" and snapshot["last"]["code"] == 3
    assert snapshot["last"]["error"].startswith("django.db.utils.OperationalError")
    assert plan_ops.calls == [("release", MIGRATE), "start"]  # the workers start all the same
    plan.settle()
    plan_ops.t += 600
    assert plan_ops.calls == [("release", MIGRATE), "start"] and plan.runs == 1  # no loop, no timer
    plan.request("app/models.py modified")  # the fix
    assert plan_ops.calls[2:] == [("release", MIGRATE)]
    plan.release_exited(0, 0.3)
    assert plan_ops.calls[3:] == ["restart"] and plan.snapshot()["state"] == "ok"
    plan.request("app/views.py modified")
    assert plan_ops.calls[4:] == ["restart"] and plan.runs == 2


def test_saves_during_a_release_make_one_restart_after_it(plan, plan_ops):
    running_then_installed(plan)
    plan.request("installed")
    plan.request("a.py modified")
    plan.request("b.py modified")
    assert plan_ops.calls[2:] == [("release", MIGRATE)]
    plan.release_exited(0, 1.0)
    assert plan_ops.calls[3:] == ["restart"] and plan.runs == 2


def test_a_save_during_a_failing_release_runs_it_once_more_then_restarts_once(plan, plan_ops):
    plan.request("startup")
    plan.request("app/models.py modified")
    plan.release_exited(1, 0.5)
    assert plan_ops.calls == [("release", MIGRATE), ("release", MIGRATE)]
    plan.release_exited(0, 0.5)
    assert plan_ops.calls[2:] == ["start"]


def test_a_procfile_edit_is_applied_before_the_workers_start_and_an_edited_release_runs(plan, plan_ops):
    plan.request("startup")
    plan.release_exited(0, 1.0)
    plan.procfile_changed(MIGRATE, ("worker", "beat"))  # workers changed, release did not
    plan.request("Procfile modified")
    assert plan_ops.calls[2:] == ["apply", "restart"]
    plan.procfile_changed("python manage.py migrate --noinput", ("worker",))
    plan.request("Procfile modified")
    assert plan_ops.calls[4:] == [("release", "python manage.py migrate --noinput")]
    plan.release_exited(0, 1.0)
    assert plan_ops.calls[5:] == ["apply", "restart"]
    plan.procfile_changed(None, ())  # no workers left: applied (supervisord drops them), nothing started
    plan.request("Procfile modified")
    assert plan_ops.calls[7:] == ["apply"] and plan.snapshot()["command"] is None


def test_a_procfile_edited_before_the_first_start_is_applied_then_the_workers_start(plan, plan_ops):
    plan.install_started()
    plan.procfile_changed(MIGRATE, ("worker", "beat"))
    plan.request("Procfile modified")
    plan.installed(ok=True)
    plan.settle()
    plan.release_exited(0, 1.0)
    assert plan_ops.calls == [("release", MIGRATE), "apply", "start"]


def test_without_a_release_the_workers_start_at_once(plan_ops):
    plan = ProcPlan(plan_ops, None, ("worker",))
    assert plan.snapshot() is None and plan.waiting() == "they start with the app"
    plan.request("startup")
    plan.request("x.py modified")
    assert plan_ops.calls == ["start", "restart"]


def test_a_release_that_hangs_is_stopped_after_the_timeout_then_killed_and_runs_again_on_the_next_save(plan_ops):
    plan = ProcPlan(plan_ops, MIGRATE, ("worker",), timeout=600, grace=5)
    plan.request("startup")
    plan.request("app/models.py modified")  # saves while it hangs wait for it
    assert plan.next_deadline() == 600
    plan_ops.t = 599.9
    assert not plan.on_timers() and plan_ops.calls == [("release", MIGRATE)]
    plan_ops.t = 600
    assert plan.on_timers() and plan_ops.calls[1:] == [("signal", TERM)]
    assert plan.snapshot()["state"] == "running" and "within 600 s" in plan.snapshot()["stopping"]
    assert plan.next_deadline() == 605  # it ignores SIGTERM: killed after the grace
    plan_ops.t = 605
    plan.on_timers()
    assert plan_ops.calls[2:] == [("signal", KILL)] and plan.next_deadline() is None
    plan.on_timers()
    assert plan_ops.calls[3:] == []  # killed once
    plan.release_exited(-9, 605.0, "waiting for the lock on table app_job")
    last = plan.snapshot()["last"]
    assert not last["ok"] and last["timed_out"] and last["timeout"] == 600
    assert last["error"] == (f"{MIGRATE!r} hung: it did not exit within 600 s and was stopped (its last line: "
                             "waiting for the lock on table app_job); set UNSTUCK_RELEASE_TIMEOUT to give it longer "
                             "(0: no limit)")
    # The save made while it hung is served: the release runs once more (it failed), with a new deadline.
    assert plan_ops.calls[3:] == [("release", MIGRATE)] and plan.next_deadline() == 605 + 600
    plan_ops.t = 606
    plan.release_exited(0, 1.0)
    assert plan_ops.calls[4:] == ["start"] and plan.snapshot()["state"] == "ok" and plan.next_deadline() is None


def test_a_release_that_exits_on_sigterm_is_not_killed_and_without_a_timeout_nothing_is_stopped(plan_ops):
    plan = ProcPlan(plan_ops, MIGRATE, ("worker",), timeout=2, grace=5)
    plan.request("startup")
    plan_ops.t = 2
    plan.on_timers()
    plan.release_exited(-15, 2.0)  # no output: the error says what hung without a last line
    assert plan.snapshot()["state"] == "failed"
    assert "hung: it did not exit within 2 s and was stopped; set" in plan.snapshot()["last"]["error"]
    plan_ops.t = 100
    plan.on_timers()
    assert plan_ops.calls == [("release", MIGRATE), ("signal", TERM), "start"]
    # A release that exits 0 within the time is ok; timeout 0 means no limit.
    unlimited = ProcPlan(plan_ops, MIGRATE, ("worker",), timeout=0)
    unlimited.request("startup")
    assert unlimited.next_deadline() is None
    plan_ops.t = 1e9
    assert not unlimited.on_timers() and plan_ops.calls[3:] == [("release", MIGRATE)]


def run_release(tmp_path, command):
    """proc_release.Release with real processes: (exit code, seconds, error) and what it printed."""
    settings = config.load({"APP_DIR": str(tmp_path)}, check_dirs=False)
    done = queue.SimpleQueue()
    Release(settings, lambda *exit: done.put(exit)).start(command)
    return done.get(timeout=30)


def test_the_release_runs_as_a_shell_runs_it_and_its_output_is_in_the_log(tmp_path, capfd):
    code, seconds, error = run_release(tmp_path, "echo 'migrating; step 1' ; echo step 2  # two steps")
    assert (code, error) == (0, None) and 0 < seconds < 10
    assert capfd.readouterr().out == "release | migrating; step 1\nrelease | step 2\n"


def test_a_failing_release_reports_its_exit_code_and_the_error_in_its_last_lines(tmp_path, capfd):
    (tmp_path / "manage.py").write_text("import sys\nprint('Operations to perform:')\n\n"
                                        "import migrations_not_there\n")
    code, _, error = run_release(tmp_path, "python3 manage.py migrate")
    assert code == 1 and error == "ModuleNotFoundError: No module named 'migrations_not_there' (manage.py:4)"
    assert "release | Operations to perform:" in capfd.readouterr().out
    code, _, error = run_release(tmp_path, "echo 'CommandError: no such app' ; exit 3")
    assert (code, error) == (3, "CommandError: no such app")


def test_a_release_has_exited_when_its_shell_has_even_if_a_process_it_started_holds_its_output(tmp_path):
    # A daemon in a session of its own keeps the pipe open: the exit is reported all the same, at once.
    code, seconds, _ = run_release(tmp_path, "setsid sleep 30 & echo started")
    assert code == 0 and seconds < 10


def test_a_release_that_ignores_sigterm_ends_on_sigkill_with_what_it_started(tmp_path):
    settings = config.load({"APP_DIR": str(tmp_path)}, check_dirs=False)
    done = queue.SimpleQueue()
    release = Release(settings, lambda *exit: done.put(exit))
    pidfile = tmp_path / "sleep.pid"
    release.start(f"trap '' TERM; sleep 30 & echo $! > {pidfile}; wait")
    deadline = time.monotonic() + 10
    while not pidfile.read_text().strip() if pidfile.exists() else True:
        assert time.monotonic() < deadline, "the release did not start"
        time.sleep(0.01)
    sleeper = int(pidfile.read_text())
    release.signal(TERM)  # ignored by the shell and by sleep (they inherit the ignored disposition)
    release.signal(KILL)
    code, _, _ = done.get(timeout=10)
    assert code == -KILL

    def gone():  # or a zombie its new parent has not reaped yet
        try:
            return Path(f"/proc/{sleeper}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
        except OSError:
            return True

    while not gone():
        assert time.monotonic() < deadline, f"what the release started ({sleeper}) still runs"
        time.sleep(0.01)


# -- containment: the control thread and the wrapper's output loop ----------------------------------------

class FlakyRpc:
    """supervisord's XML-RPC proxy: the first call fails with something unexpected, later ones work."""

    def __init__(self):
        self.calls = queue.SimpleQueue()
        self.supervisor = self
        self.count = 0

    def signalProcessGroup(self, group, signal_name):
        self.count += 1
        self.calls.put((group, signal_name))
        if self.count == 1:
            raise TypeError("cannot marshal <class 'object'> objects")

    def startProcessGroup(self, group, wait):
        self.calls.put((group, "start"))


def test_the_control_thread_survives_an_unexpected_error_and_says_so_once(tmp_path, caplog):
    from unstuck.procs.proc_control import ProcControl

    settings = config.load({"APP_DIR": str(tmp_path), "UNSTUCK_RUN_DIR": str(tmp_path)}, check_dirs=False)
    rpc = FlakyRpc()
    control = ProcControl(settings, rpc=rpc)
    control.restart_workers()
    control.restart_workers()  # queued behind the failure: done all the same
    assert [rpc.calls.get(timeout=5) for _ in range(3)] == [("procs", "HUP"), ("procs", "HUP"), ("procs", "start")]
    failed = [r for r in caplog.records if "could not control the Procfile workers" in r.getMessage()]
    assert len(failed) == 1 and "TypeError: cannot marshal" in failed[0].getMessage()


def started_worker(tmp_path, command):
    settings = config.load({"APP_DIR": str(tmp_path), "UNSTUCK_RUN_DIR": str(tmp_path)}, check_dirs=False)
    worker = proc_worker.ProcWorker(settings, "w", command)
    worker.state_file.parent.mkdir(exist_ok=True)
    worker.spawn()
    return worker


def test_a_worker_that_redirects_its_own_output_does_not_wake_the_wrapper_forever(tmp_path):
    worker = started_worker(tmp_path, "echo before; exec >/dev/null 2>&1; sleep 30")
    try:
        wakeups = 0
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:  # the wrapper's loop: select, then read what is ready
            for _ in worker.selector.select(0.2):
                wakeups += 1
                worker.drain()
        # the output line, then EOF once: never an endless series of wake-ups on a pipe at EOF
        assert wakeups <= 3 and list(worker.tail) == ["before"]
        assert worker.proc.poll() is None  # it still runs: EOF is not an exit
    finally:
        worker.signal(signal.SIGKILL)
        worker.proc.wait(5)
        worker.reap()


def test_output_without_newlines_is_logged_in_bounded_pieces(tmp_path, capfd):
    worker = started_worker(tmp_path, "head -c 300000 /dev/zero | tr '\\000' x; sleep 30")
    try:
        got = 0
        deadline = time.monotonic() + 10
        while got < 300000 and time.monotonic() < deadline:
            for _ in worker.selector.select(0.2):
                worker.drain()
            got = sum(len(line) for line in worker.tail) + len(worker.buffer)
            assert len(worker.buffer) <= proc_worker.MAX_LINE
        assert got == 300000
        assert all(len(line) <= proc_worker.MAX_LINE for line in worker.tail)
        assert set("".join(worker.tail) + worker.buffer.decode()) == {"x"}
    finally:
        worker.signal(signal.SIGKILL)
        worker.proc.wait(5)
        worker.reap()
