"""The generation state machine, driven with a fake OS: every transition, and stop in every state."""

import logging
import signal
import subprocess
import sys

import pytest

from repo import REPO
from unstuck.reload import events as ev
from unstuck.errors.failure import Failure
from unstuck.backoff import delay
from unstuck.reload import generations as gens
from unstuck.reload.generations import Generations, Policy, describe_changes, describe_exit

TERM, KILL = signal.SIGTERM, signal.SIGKILL
POLICY = Policy(grace=2.0, backoff_max=10.0, settle_s=0.3, slow_start_s=0.8, kill_margin_s=1.0)
SYNTAX = Failure("import", "SyntaxError", "invalid syntax", "app/main.py", 3)


class FakeOps:
    """The world as the machine sees it: a clock the test advances, and a record of what it was asked."""

    def __init__(self):
        self.t = 100.0
        self.spawned = []
        self.signals = []
        self.deps = ()
        self.problem = None
        self.installs = 0
        self.learned = []
        self.rebuilt = 0
        self.layers = 0
        self.procs = []
        self.serving_order = []
        self.distrusted = []

    def now(self):
        return self.t

    def wall(self):
        return 1_700_000_000.0 + self.t

    def spawn(self, gen):
        self.spawned.append(gen)

    def signal(self, gen, signum):
        self.signals.append((gen.id, signum))

    def preflight(self):
        return self.problem

    def dependencies_pending(self):
        return self.deps

    def install(self):
        self.installs += 1

    def learn_modules(self, modules, app_modules=()):
        self.learned.append(modules)

    def rebuild_warm(self):
        self.rebuilt += 1

    def prepare_layer(self):
        self.layers += 1

    def restart_procs(self, reason):
        self.procs.append(reason)

    def distrust(self, source):
        self.distrusted.append(source)
        return f"{source} narrowed."

    def app_label(self):
        return "app.main:app"

    def serving(self, gen):
        self.serving_order.append(gen.id if gen else None)
        self.signals.append(("serving", gen.id if gen else None))


class Machine(Generations):
    """The machine as the reload server runs it: the actions it returns are carried out on the fake OS at once,
    in order (generations.carry_out, as the shell does). Strict: a transition outside TRANSITIONS fails."""

    def __init__(self, ops, policy):
        super().__init__(ops, policy, strict=True)

    def carried_out(self, actions):
        gens.carry_out(actions, self.ops, self.handle)
        return actions

    def start(self):
        return self.carried_out(super().start())

    def handle(self, event):
        return self.carried_out(super().handle(event))

    def on_timers(self):
        return self.carried_out(super().on_timers())


@pytest.fixture
def ops():
    return FakeOps()


@pytest.fixture
def m(ops):
    return Machine(ops, POLICY)


def advance(m, ops, seconds):
    ops.t += seconds
    m.on_timers()


def ready(m, gen, **kw):
    m.handle(ev.Ready(gen.id, m.ops.now(), **kw))


def failed(m, gen, failure=SYNTAX):
    m.handle(ev.Failed(gen.id, failure, m.ops.now()))


def exited(m, gen, code=0):
    m.handle(ev.Exited(gen.id, code))


def change(m, *paths, **facts):
    m.handle(ev.Changes(frozenset(("modified", p) for p in paths), **facts))


def serving(m, ops):
    """Started and serving its first generation."""
    m.start()
    gen = ops.spawned[-1]
    ready(m, gen)
    assert m.state() == "serving" and m.current is gen
    return gen


def signalled(ops, gen):
    return [s for g, s in ops.signals if g == gen.id]


def test_the_new_generation_is_named_before_the_old_one_is_signalled(m, ops):
    old = serving(m, ops)
    change(m, "app/main.py")
    new = ops.spawned[-1]
    ready(m, new)
    # The old one hands its idle connections to whoever serves when it is told to retire.
    assert ops.signals[-2:] == [("serving", new.id), (old.id, TERM)]
    m.handle(ev.StopRequested())
    assert ops.serving_order[-1] is None


# -- start and reload ------------------------------------------------------------------------------

def test_startup_spawns_one_app_generation_and_promotes_it_when_ready(m, ops):
    m.start()
    assert [g.kind for g in ops.spawned] == ["app"] and m.state() == "starting"
    ready(m, ops.spawned[0])
    assert m.state() == "serving" and m.counters["reloads"] == 1
    assert ops.procs == ["startup"]  # the Procfile workers start with it, not before


def test_a_change_starts_a_generation_beside_the_current_one_and_retires_the_old_one_when_ready(m, ops):
    old = serving(m, ops)
    change(m, "app/main.py")
    new = ops.spawned[-1]
    assert m.pending is new and m.current is old and m.state() == "reloading"
    assert signalled(ops, old) == []  # the old one serves until the new one is ready
    ready(m, new)
    assert m.current is new and signalled(ops, old) == [TERM]
    assert m.snapshot()["last_reload"]["trigger"] == "app/main.py modified"


def test_procfile_workers_restart_with_the_same_batch(m, ops):
    serving(m, ops)
    change(m, "app/tasks.py")
    assert ops.procs == ["startup", "app/tasks.py modified"]


def test_a_retiring_generation_that_does_not_exit_is_killed_after_the_grace(m, ops):
    old = serving(m, ops)
    change(m, "app/main.py")
    ready(m, ops.spawned[-1])
    advance(m, ops, POLICY.grace + POLICY.kill_margin_s - 0.01)
    assert signalled(ops, old) == [TERM]
    advance(m, ops, 0.02)
    assert signalled(ops, old) == [TERM, KILL]


def test_a_retiring_generation_that_exits_in_time_is_not_killed(m, ops):
    old = serving(m, ops)
    change(m, "app/main.py")
    ready(m, ops.spawned[-1])
    exited(m, old, -TERM)
    advance(m, ops, 10)
    assert signalled(ops, old) == [TERM] and m.counters["crashes"] == 0 and len(ops.spawned) == 2


def test_newer_change_during_a_reload_restarts_it_and_the_stale_one_is_never_promoted(m, ops):
    serving(m, ops)
    change(m, "app/main.py")
    stale = ops.spawned[-1]
    change(m, "app/main.py")
    latest = ops.spawned[-1]
    assert signalled(ops, stale) == [TERM] and m.pending is latest
    ready(m, stale)
    assert m.current is not stale
    ready(m, latest)
    assert m.current is latest


# -- settle ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("facts", [{"half_done": frozenset({"app/main.py"})}, {"new_dir": True}])
def test_half_done_saves_wait_for_the_settle_window_and_merge_into_one_reload(m, ops, facts):
    serving(m, ops)
    change(m, "app/main.py", **facts)
    assert len(ops.spawned) == 1
    advance(m, ops, 0.1)
    change(m, "app/other.py")  # arrives during the window: waits with it
    assert len(ops.spawned) == 1
    advance(m, ops, POLICY.settle_s)
    assert len(ops.spawned) == 2 and m.counters["changes"] == 1
    assert "app/main.py" in ops.spawned[-1].trigger and "app/other.py" in ops.spawned[-1].trigger


def test_an_in_place_save_seen_empty_waits_for_its_text_then_reloads_at_once(m, ops):
    """An in-place save is a truncation, then a write: a writer descheduled between the two is delivered as
    two batches, the first of them an empty file. Reloading that would serve an error for a moment (an empty
    module has no app) and count a failure; its text ends the wait as soon as it is read."""
    serving(m, ops)
    change(m, "app/main.py", half_done=frozenset({"app/main.py"}))
    advance(m, ops, 0.05)
    assert len(ops.spawned) == 1
    change(m, "app/main.py")
    assert len(ops.spawned) == 2 and m.counters["changes"] == 1 and "settle" not in m.timers
    assert ops.spawned[-1].trigger == "app/main.py modified"


def test_a_file_saved_empty_is_reloaded_when_the_window_runs_out(m, ops):
    serving(m, ops)
    change(m, "app/main.py", half_done=frozenset({"app/main.py"}))
    change(m, "app/other.py")  # complete, but main.py is not: both wait
    advance(m, ops, POLICY.settle_s / 2)
    assert len(ops.spawned) == 1
    advance(m, ops, POLICY.settle_s)
    assert len(ops.spawned) == 2 and m.counters["changes"] == 1


def test_a_burst_waits_out_its_window_even_when_its_half_done_file_completes(m, ops):
    serving(m, ops)
    m.handle(ev.Changes(frozenset(("added", f"app/gen/m{i}.py") for i in range(20)),
                        half_done=frozenset({"app/gen/m0.py"})))
    change(m, "app/gen/m0.py")
    assert len(ops.spawned) == 1  # the rest of the checkout may still be coming
    advance(m, ops, POLICY.settle_s)
    assert len(ops.spawned) == 2 and m.counters["changes"] == 1


def read_as(**prints):
    return {"fingerprints": frozenset((f"app/{name}.py", value) for name, value in prints.items())}


def test_a_batch_whose_files_read_as_when_last_delivered_is_not_a_new_save(m, ops):
    """An in-place save seen in two batches, both read after its write: the second restarts nothing."""
    serving(m, ops)
    change(m, "app/main.py", **read_as(main="v2"))
    change(m, "app/main.py", **read_as(main="v2"))
    assert len(ops.spawned) == 2 and m.counters["changes"] == 1 and m.counters["superseded"] == 0
    change(m, "app/main.py", **read_as(main="v3"))  # saved again (or touched: a new stamp)
    assert len(ops.spawned) == 3 and m.counters["superseded"] == 1


def test_a_batch_is_a_new_save_when_any_file_is_new_or_unknown(m, ops):
    serving(m, ops)
    change(m, "app/main.py", **read_as(main="v2"))
    change(m, "app/main.py", "app/views.py", **read_as(main="v2", views="v1"))  # views.py not delivered before
    assert len(ops.spawned) == 3
    change(m, "app/main.py", **read_as(main=None))  # not read (too large, gone, written while read)
    change(m, "app/main.py", **read_as(main=None))
    assert len(ops.spawned) == 5 and m.counters["changes"] == 4


def test_a_burst_of_files_is_one_reload(m, ops):
    serving(m, ops)
    m.handle(ev.Changes(frozenset(("added", f"app/gen/m{i}.py") for i in range(500))))
    advance(m, ops, POLICY.settle_s)
    assert len(ops.spawned) == 2 and m.counters["changes"] == 1
    assert ops.spawned[-1].trigger.endswith("and 497 more")


# -- failures and crashes -----------------------------------------------------------------------------

def test_a_broken_save_is_served_as_the_error_and_a_fix_brings_the_app_back(m, ops):
    old = serving(m, ops)
    change(m, "app/main.py")
    broken = ops.spawned[-1]
    failed(m, broken)
    assert m.state() == "broken" and m.current is broken and signalled(ops, old) == [TERM]
    assert m.snapshot()["error"] == "SyntaxError: invalid syntax (app/main.py:3)"
    assert m.snapshot()["last_reload"]["ok"] is False and m.counters["failures"] == 1
    change(m, "app/main.py")
    fixed = ops.spawned[-1]
    ready(m, fixed)
    assert m.state() == "serving" and signalled(ops, broken) == [TERM]


def test_crashes_back_off_doubling_up_to_the_cap_and_the_port_says_why(m, ops):
    ops_policy = Policy(grace=2.0, backoff_max=2.0)
    m = Machine(ops, ops_policy)
    gen = serving(m, ops)
    exited(m, gen, 1)  # first crash: at once
    assert ops.spawned[-1].kind == "app" and ops.spawned[-1].trigger == "restart after crash"
    delays = []
    for _ in range(4):
        gen = ops.spawned[-1]
        ready(m, gen)
        exited(m, gen, -signal.SIGSEGV)
        assert m.current.kind == "responder" and "SIGSEGV" in m.current.failure.message
        before = len(ops.spawned)
        waited = 0.0
        while len(ops.spawned) == before:
            advance(m, ops, 0.25)
            waited += 0.25
        delays.append(waited)
    assert delays == [1.0, 2.0, 2.0, 2.0]
    assert m.counters["crashes"] == 5 and m.counters["restarts"] == 5


def test_a_crash_after_a_stable_run_restarts_at_once_whatever_came_before(m, ops):
    gen = serving(m, ops)
    for _ in range(3):  # a crash loop first
        exited(m, gen, 1)
        advance(m, ops, 10)
        gen = ops.spawned[-1]
        ready(m, gen)
    before = len(ops.spawned)
    advance(m, ops, 11)  # then a healthy run, longer than STABLE_AFTER_S
    exited(m, gen, 1)
    assert len(ops.spawned) == before + 1 and m.backoff.crashes == 1


def in_crash_backoff(m, ops):
    """Serving, then crashed twice in a row: the second restart waits out a backoff."""
    gen = serving(m, ops)
    exited(m, gen, 1)
    gen = ops.spawned[-1]
    ready(m, gen)
    exited(m, gen, 1)
    assert "restart" in m.timers


def test_a_save_during_crash_backoff_is_served_without_waiting(m, ops):
    in_crash_backoff(m, ops)
    change(m, "app/main.py")
    assert "restart" not in m.timers and ops.spawned[-1].trigger == "app/main.py modified"
    assert m.backoff.crashes == 0


def test_a_save_whose_import_kills_the_process_shows_the_crash_in_place_of_the_old_version(m, ops):
    old = serving(m, ops)
    change(m, "app/main.py")
    dying = ops.spawned[-1]
    exited(m, dying, 3)
    assert m.current.kind == "responder" and "exited with code 3 while loading" in m.current.failure.message
    assert signalled(ops, old) == [TERM]


def test_a_slow_first_import_gets_a_starting_page_then_the_app_replaces_it(m, ops):
    m.start()
    app = ops.spawned[-1]
    advance(m, ops, POLICY.slow_start_s)
    responder = ops.spawned[-1]
    assert responder.kind == "responder" and responder.failure.phase == "starting" and m.state() == "starting"
    ready(m, app)
    assert m.current is app and signalled(ops, responder) == [TERM]


# -- stop in every state ------------------------------------------------------------------------------

def stop_and_finish(m, ops):
    m.handle(ev.StopRequested())
    for gen in list(m.live.values()):
        assert TERM in signalled(ops, gen), gen
    spawned = len(ops.spawned)
    advance(m, ops, 60)  # every timer that was armed is due by now
    assert len(ops.spawned) == spawned, "nothing may start after a stop"
    for gen in list(m.live.values()):
        exited(m, gen, -TERM)
    assert m.finished and m.state() == "stopping"


def test_stop_while_serving(m, ops):
    serving(m, ops)
    stop_and_finish(m, ops)


def test_stop_while_broken(m, ops):
    serving(m, ops)
    change(m, "app/main.py")
    failed(m, ops.spawned[-1])
    stop_and_finish(m, ops)


def test_stop_mid_reload_retires_both_generations(m, ops):
    serving(m, ops)
    change(m, "app/main.py")
    stop_and_finish(m, ops)


def test_stop_during_crash_backoff_starts_nothing_after(m, ops):
    in_crash_backoff(m, ops)
    stop_and_finish(m, ops)


def test_stop_during_a_slow_first_import_starts_nothing_after(m, ops):
    m.start()
    assert "slow_start" in m.timers
    stop_and_finish(m, ops)


def test_stop_during_the_settle_window_starts_nothing_after(m, ops):
    serving(m, ops)
    change(m, "app/main.py", half_done=frozenset({"app/main.py"}))
    stop_and_finish(m, ops)


def test_stop_while_installing_ignores_the_install_result(m, ops):
    serving(m, ops)
    ops.deps = ("requirements.txt",)
    change(m, "requirements.txt", dependencies=True)
    m.handle(ev.StopRequested())
    m.handle(ev.Installed(True, ("requirements.txt",), 1.0))
    assert len(ops.spawned) == 1


def test_a_generation_that_ignores_the_stop_is_killed_and_exits_after_stop_restart_nothing(m, ops):
    gen = serving(m, ops)
    m.handle(ev.StopRequested())
    m.handle(ev.StopRequested())  # twice is once
    advance(m, ops, POLICY.grace + POLICY.kill_margin_s)
    assert signalled(ops, gen) == [TERM, KILL]
    exited(m, gen, -KILL)
    assert m.finished and len(ops.spawned) == 1 and m.counters["crashes"] == 0


# -- dependencies and environment ---------------------------------------------------------------------

def test_one_requirements_save_is_one_reload_after_the_install(m, ops):
    serving(m, ops)
    ops.deps = ("requirements.txt",)
    change(m, "requirements.txt", dependencies=True)
    assert ops.installs == 1 and len(ops.spawned) == 1 and m.installing
    ops.deps = ()
    m.handle(ev.Installed(True, ("requirements.txt",), 1.5))
    assert len(ops.spawned) == 2 and ops.rebuilt == 1 and not m.installing
    assert ops.spawned[-1].trigger == "requirements.txt modified"


@pytest.mark.parametrize("code", [False, True])
def test_a_failed_install_keeps_the_current_generation_and_says_why(m, ops, code):
    gen = serving(m, ops)
    ops.deps = ("requirements.txt",)
    change(m, "requirements.txt", dependencies=True, code=code)
    m.handle(ev.Installed(False, ("requirements.txt",), 2.0, "No solution found: nope==9"))
    assert m.current is gen and "nope==9" in m.snapshot()["dependencies_error"]
    # Reloaded only when code changed with the dependencies: a failed install changed nothing else.
    assert len(ops.spawned) == (2 if code else 1) and m.state() == ("reloading" if code else "serving")


@pytest.mark.parametrize("had_env", [True, False])
def test_a_failed_install_names_the_cause_first_and_claims_no_environment_that_is_not_there(m, ops, caplog, had_env):
    ops.deps = ("requirements.txt",)
    m.start()
    summary = "uwsgi 2.0.31 cannot be built: no C compiler in this image"
    with caplog.at_level("ERROR", logger="unstuck"):
        m.handle(ev.Installed(False, ("requirements.txt",), 2.0, "error: Failed to build `uwsgi==2.0.31`\n...",
                              summary, had_env))
    assert m.snapshot()["dependencies_error"].splitlines()[0] == \
        f"installing dependencies from requirements.txt failed: {summary}"
    logged = caplog.records[-1].getMessage()
    assert logged.startswith(f"installing dependencies from requirements.txt failed: {summary}; "), logged
    assert ("the previous environment keeps serving" in logged) is had_env, logged
    assert ("nothing is installed yet" in logged) is not had_env, logged


def test_a_project_that_is_not_installed_as_a_package_is_said_in_the_status_until_it_is(m, ops):
    ops.deps = ("pyproject.toml",)
    m.start()
    ops.deps = ()
    warning = "the project itself (/workspace) is not installed as a package: ..."
    m.handle(ev.Installed(True, ("pyproject.toml",), 1.0, warning=warning))
    assert m.snapshot()["dependencies_warning"] == warning and m.snapshot()["dependencies_error"] is None
    assert ops.spawned[-1].kind == "app"  # the dependencies are in: the app starts
    m.handle(ev.Installed(True, ("pyproject.toml",), 1.0))
    assert m.snapshot()["dependencies_warning"] is None


def test_a_dependency_change_during_an_install_is_installed_next_then_one_reload(m, ops):
    serving(m, ops)
    ops.deps = ("requirements.txt",)
    change(m, "requirements.txt", dependencies=True)
    change(m, "requirements.txt", dependencies=True)
    assert ops.installs == 1
    m.handle(ev.Installed(True, ("requirements.txt",), 1.0))
    assert ops.installs == 2 and len(ops.spawned) == 1
    ops.deps = ()
    m.handle(ev.Installed(True, ("requirements.txt",), 1.0))
    assert len(ops.spawned) == 2


def test_startup_with_missing_dependencies_says_so_then_starts_the_app(m, ops):
    ops.deps = ("pyproject.toml",)
    m.start()
    assert [g.kind for g in ops.spawned] == ["responder"] and m.state() == "starting" and ops.installs == 1
    ops.deps = ()
    m.handle(ev.Installed(True, ("pyproject.toml",), 3.0))
    app = ops.spawned[-1]
    assert app.kind == "app" and app.trigger == "startup"
    ready(m, app)
    assert m.state() == "serving"


def test_an_environment_problem_blocks_every_import_until_it_is_fixed(m, ops):
    ops.problem = Failure("environment", "PythonVersion", "pyproject.toml requires Python >=3.14; this image runs "
                                                          "3.11.2: rebuild with BASE_IMAGE=python:3.14-slim")
    ops.deps = ("pyproject.toml",)
    m.start()
    assert [g.kind for g in ops.spawned] == ["responder"] and ops.installs == 0
    assert "requires Python >=3.14" in m.snapshot()["environment_error"]
    change(m, "app/main.py")
    assert len(ops.spawned) == 1  # nothing imported while the interpreter is wrong
    ops.problem, ops.deps = None, ()
    change(m, "pyproject.toml", dependencies=True)
    assert ops.spawned[-1].kind == "app" and m.snapshot()["environment_error"] is None


# -- reporting ---------------------------------------------------------------------------------------

def test_each_reload_records_its_phases(m, ops):
    old = serving(m, ops)
    ops.t = 200.0
    m.handle(ev.Changes(frozenset({("modified", "app/main.py")}), saved_at=199.990, seen_at=199.995))
    gen = ops.spawned[-1]
    m.handle(ev.Started(gen.id, 4242, 200.002, forked=True))
    m.handle(ev.Imported(gen.id, 200.010))
    m.handle(ev.Ready(gen.id, 200.015))
    m.handle(ev.Served(gen.id, 200.020))
    exited(m, old, -TERM)
    phases = m.snapshot()["last_reload"]["phases"]
    assert list(phases) == ["saved", "delivered", "applied", "forked", "imported", "ready", "served", "old_gone"]
    assert phases["saved"] == 0 and phases["ready"] == pytest.approx(0.025) and phases["old_gone"] == pytest.approx(0.01)
    assert m.snapshot()["worker_pid"] == 4242


def test_what_a_reload_was_made_from_is_recorded_even_when_the_warm_process_says_so_after_its_ready(m, ops):
    # The worker's own reports and the warm process's word of the fork come on two pipes: under load the worker
    # may be ready (and its reload recorded) before the warm process's "forked" is handled.
    serving(m, ops)
    m.handle(ev.Changes(frozenset({("modified", "app/views.py")})))
    gen = ops.spawned[-1]
    m.handle(ev.Started(gen.id, 0, ops.now(), forked=True))  # the worker's own "started": no source
    ready(m, gen)
    m.handle(ev.Started(gen.id, 4244, ops.now(), forked=True, source="app layer"))  # the warm process, late
    assert m.snapshot()["last_reload"]["from"] == "app layer"


def test_a_reload_carries_the_saves_that_caused_it_and_records_what_its_process_was_made_from(m, ops):
    serving(m, ops)
    m.handle(ev.Changes(frozenset({("modified", "app/main.py"), ("added", "app/models.py")})))
    gen = ops.spawned[-1]
    # What the warm process needs to know whether its app layer may serve it (app_layer.usable).
    assert gen.changes == frozenset({("modified", "app/main.py"), ("added", "app/models.py")})
    m.handle(ev.Started(gen.id, 4243, ops.now(), forked=True, source="app layer"))
    ready(m, gen)
    assert m.snapshot()["last_reload"]["from"] == "app layer"
    # Not caused by saves (a crash, an install): no changes, and the layer is never used for it.
    m.handle(ev.Exited(gen.id, 1))
    advance(m, ops, 60)
    restarted = ops.spawned[-1]
    assert restarted is not gen and restarted.changes is None


def test_the_modules_the_serving_generation_uses_are_learned_and_a_replaced_ones_are_not(m, ops):
    old = serving(m, ops)
    m.handle(ev.Uses(old.id, ("fastapi",)))
    assert ops.learned == [("fastapi",)]  # the warm process preloads them for the next generation
    assert ops.layers == 1  # and, the reload being done, builds its app layer
    change(m, "app/main.py")
    new = ops.spawned[-1]
    m.handle(ev.Uses(old.id, ("fastapi",)))  # while a reload imports: no layer built beside it
    assert ops.layers == 1
    ready(m, new)
    m.handle(ev.Uses(old.id, ("old_only",)))  # late, from the generation being retired
    m.handle(ev.Uses(new.id, ("anyio._backends._asyncio",)))  # what its first request imported
    assert ops.learned == [("fastapi",), ("fastapi",), ("anyio._backends._asyncio",)]
    assert ops.layers == 2


def test_a_broken_save_has_the_warm_process_build_its_app_layer_for_the_fix(m, ops):
    serving(m, ops)
    change(m, "app/main.py")
    assert ops.layers == 0  # not beside a reload in progress
    failed(m, ops.spawned[-1])
    assert ops.layers == 1  # the error page is up: the fix is the next save


def test_events_for_unknown_generations_are_ignored_and_non_events_rejected(m, ops):
    serving(m, ops)
    for event in (ev.Ready(99, 0.0), ev.Failed(99, SYNTAX, 0.0), ev.Exited(99, 1), ev.Served(99, 0.0)):
        m.handle(event)
    assert m.state() == "serving" and len(ops.spawned) == 1
    with pytest.raises(TypeError):
        m.handle(("report", None, {}))


def test_backoff_is_immediate_then_doubles_up_to_the_cap():
    assert [delay(n, 10) for n in range(1, 9)] == [0, 1, 2, 4, 8, 10, 10, 10]
    assert [delay(n, 2.5) for n in range(1, 6)] == [0, 1, 2, 2.5, 2.5]


def test_exit_and_change_descriptions():
    assert describe_exit(1) == "exited with code 1"
    assert describe_exit(-signal.SIGKILL) == "was killed by SIGKILL"
    assert describe_changes({("modified", "app/main.py")}) == "app/main.py modified"
    many = {("added", f"app/m{i}.py") for i in range(5)}
    assert describe_changes(many) == "app/m0.py added, app/m1.py added, app/m2.py added and 2 more"


# -- a fast path's failure is checked on the plain path before it is shown -----------------------------

STALE = Failure("import", "ImportError", "cannot import name 'rich_text' from 'wagtail.admin'",
                "breads/wagtail_hooks.py", 112)


def held(m, gen, failure=STALE, source="spare"):
    m.handle(ev.Failed(gen.id, failure, m.ops.now(), held=True, source=source))


def test_a_fast_path_failure_is_tried_in_a_fresh_interpreter_before_anything_is_shown(m, ops):
    old = serving(m, ops)
    change(m, "app/views.py")
    fast = ops.spawned[-1]
    held(m, fast)
    plain = ops.spawned[-1]
    # Nothing is shown yet: the old generation serves, and the same saves are started on the plain path.
    assert plain is not fast and plain.verifies == ("spare", STALE) and m.pending is plain
    assert m.current is old and m.state() == "reloading" and signalled(ops, old) == []
    assert plain.trigger == fast.trigger and plain.changes == fast.changes and ops.procs == ["startup", "app/views.py modified"]
    exited(m, fast, 0)  # it served nothing and exits by itself: not a crash
    assert m.counters["crashes"] == 0 and len(ops.spawned) == 3

    m.handle(ev.Started(plain.id, 4300, m.ops.now(), forked=False))  # spawned: the shell's word, then its own
    m.handle(ev.Started(plain.id, 0, m.ops.now(), forked=False))
    ready(m, plain)  # a fresh interpreter serves the same code: the fast path was wrong
    assert m.current is plain and m.state() == "serving" and m.counters["failures"] == 0
    assert m.snapshot()["last_reload"]["from"] == "new interpreter"  # not "warm process": its status record
    assert ops.distrusted == ["spare"] and m.counters["fast_path_wrong"] == 1
    note = m.snapshot()["fast_path"][-1]
    assert "the spare failed (ImportError: cannot import name 'rich_text'" in note and "spare narrowed." in note


def test_a_failure_the_fresh_interpreter_shows_too_is_shown_and_nothing_is_narrowed(m, ops):
    serving(m, ops)
    change(m, "app/views.py")
    held(m, ops.spawned[-1], source="app layer")
    plain = ops.spawned[-1]
    failed(m, plain, STALE)
    assert m.current is plain and m.state() == "broken" and m.snapshot()["error"] == STALE.headline()
    assert ops.distrusted == [] and m.snapshot()["fast_path"] == []


def test_a_newer_save_while_a_failure_is_checked_wins(m, ops):
    serving(m, ops)
    change(m, "app/views.py")
    held(m, ops.spawned[-1])
    checking = ops.spawned[-1]
    change(m, "app/views.py")
    latest = ops.spawned[-1]
    assert signalled(ops, checking) == [TERM] and m.pending is latest and latest.verifies is None
    ready(m, checking)
    assert m.current is not checking and ops.distrusted == []


def test_a_held_failure_of_a_superseded_generation_starts_nothing(m, ops):
    serving(m, ops)
    change(m, "app/views.py")
    stale = ops.spawned[-1]
    change(m, "app/views.py")
    held(m, stale)
    assert len(ops.spawned) == 3 and m.pending is ops.spawned[-1] and ops.spawned[-1].verifies is None


def test_the_first_generation_is_checked_too_and_the_port_says_starting_meanwhile(m, ops):
    m.start()
    held(m, ops.spawned[-1], source="fork")
    plain = ops.spawned[-1]
    assert m.state() == "starting" and plain.verifies == ("fork", STALE)
    advance(m, ops, POLICY.slow_start_s)
    assert m.current.failure.phase == "starting"  # the "starting" page, not the fast path's error
    ready(m, plain)
    assert m.state() == "serving" and ops.distrusted == ["fork"]


# -- one state per generation, and the machine only says what to do ---------------------------------------------

def test_a_generation_has_one_state_through_a_reload_and_a_stop(m, ops):
    old = serving(m, ops)
    assert old.state == gens.SERVING
    change(m, "app/main.py")
    new = ops.spawned[-1]
    assert (old.state, new.state) == (gens.SERVING, gens.PENDING)
    ready(m, new)
    assert (old.state, new.state) == (gens.RETIRING, gens.SERVING) and m.retiring == [old]
    exited(m, old, -TERM)
    assert old.state == gens.EXITED and m.retiring == [] and old.id not in m.live
    m.handle(ev.StopRequested())
    # Told to stop, it is still the one the status names until it is gone.
    assert new.state == gens.STOPPING and m.current is new and m.snapshot()["generation"] == new.id
    exited(m, new, -TERM)
    assert new.state == gens.EXITED and m.current is None and m.finished


def test_a_held_failure_retires_its_generation_and_a_crash_while_loading_ends_it(m, ops):
    serving(m, ops)
    change(m, "app/views.py")
    fast = ops.spawned[-1]
    held(m, fast)
    assert fast.state == gens.RETIRING and m.pending is ops.spawned[-1]  # exits by itself: not a crash
    plain = ops.spawned[-1]
    exited(m, plain, 3)
    assert plain.state == gens.EXITED and m.current.kind == "responder"


def test_an_illegal_transition_raises_in_tests_and_is_logged_once_in_production(ops, caplog):
    strict = Machine(ops, POLICY)
    gen = serving(strict, ops)
    with pytest.raises(gens.IllegalTransition, match="serving -> pending"):
        strict._to(gen, gens.PENDING)
    lenient = Generations(ops, POLICY)
    lenient.start()
    gen = lenient.pending
    with caplog.at_level(logging.ERROR, logger="unstuck"):
        lenient._to(gen, gens.NEW)  # pending -> new
        lenient._to(gen, gens.EXITED)  # new -> exited
        again = lenient._new("app", "test")
        lenient._to(again, gens.EXITED)  # the same illegal step again: not logged twice
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 2 and "went from pending to new" in said[0] and "from new to exited" in said[1], said
    assert again.state == gens.EXITED  # made anyway: the machine goes on as it did before the check


def test_the_machine_returns_what_to_do_and_does_nothing_itself(ops):
    machine = Generations(ops, POLICY, strict=True)
    actions = machine.start()
    gen = machine.pending
    assert actions == [ev.Spawn(gen), ev.RestartProcs("startup")] and ops.spawned == [] and ops.procs == []
    actions = machine.handle(ev.Ready(gen.id, ops.now()))
    assert actions == [ev.Serve(gen)] and machine.current is gen and ops.serving_order == []


def test_the_state_machines_import_nothing_of_uvicorn_watchfiles_or_supervisor():
    code = ("import sys; import unstuck.reload.generations, unstuck.reload.events, unstuck.procs.proc_states, "
            "unstuck.procs.proc_plan, unstuck.wire; "
            "print(' '.join(sorted({n.split('.')[0] for n in sys.modules} & {'uvicorn', 'watchfiles', 'supervisor'})))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            env={"PYTHONPATH": str(REPO / "entrypoint")})
    assert result.stdout.strip() == ""
