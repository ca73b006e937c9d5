"""The Watcher's decisions, driven by a fake watchfiles.watch that fails on cue and a fake clock: no thread,
no sleeping. What real watchfiles does in each case is in tests/host/test_watcher_real.py."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import pytest
from watchfiles import Change

from unstuck.config import DEFAULT_IGNORE, DEFAULT_WATCH
from unstuck.watching.mounts import Decision
from unstuck.watching.watch_filter import WatchFilter
from unstuck.watching.watcher import (CATCH_UP_MARGIN_S, INOTIFY_RETRY_S, RESTART_MAX_S, STABLE_AFTER_S, Watcher)

WATCH_LIMIT = OSError('OS file watch limit reached. about ["/w/pkg"] (Error { kind: MaxFilesWatch, paths: ["/w/pkg"] })')
INSTANCE_LIMIT = RuntimeError("Error creating recommended watcher: Too many open files (os error 24)")


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Tick:
    """watchfiles' yield after `rust_timeout` without changes, `seconds` after the previous one."""

    def __init__(self, seconds: float = 1.0) -> None:
        self.seconds = seconds


def starts(*steps):
    """A session of the fake watch: the watcher exists (is_set() is called), then each step happens."""
    def session(clock, stop_event):
        stop_event.is_set()
        for step in steps:
            if isinstance(step, BaseException):
                raise step
            if isinstance(step, Tick):
                clock.advance(step.seconds)
                yield set()
            elif callable(step):
                step()
            else:
                yield step
            if stop_event.is_set():
                return
    return session


def fails(exc):
    """A session whose watcher cannot even be created."""
    def session(clock, stop_event):
        raise exc
        yield  # a generator, like watchfiles.watch
    return session


FAKES: list["FakeWatch"] = []


@pytest.fixture(autouse=True)
def no_unplanned_watchers():
    """run() swallows the fake's complaint like any failure: each test fails here instead."""
    FAKES.clear()
    yield
    assert not any(fake.overrun for fake in FAKES), "the watcher started more watchers than the test planned"


class FakeWatch:
    """Stands in for watchfiles.watch: each call plays the next session and is recorded; when they are all
    played, the watcher is stopped."""

    def __init__(self, clock: Clock, *sessions) -> None:
        self.clock = clock
        self.sessions = list(sessions)
        self.calls: list[dict] = []
        self.watcher: Watcher | None = None
        self.overrun = False
        FAKES.append(self)

    def __call__(self, *paths, stop_event, force_polling, **options):
        self.calls.append({"polling": force_polling, "probe": options.get("watch_filter", 0) is None,
                           "at": self.clock.now})
        self.watch_filter = options.get("watch_filter")
        if not self.sessions:  # stop it: it would otherwise restart after this failure forever
            self.overrun = True
            self.watcher.stop()
            raise AssertionError("the watcher started more watchers than the test planned")
        session = self.sessions.pop(0)(self.clock, stop_event)
        last = not self.sessions

        def played():
            yield from session
            if last:
                self.watcher.stop()
        return played()


@pytest.fixture
def logs():
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record):
            lines.append(f"{record.levelname} {record.getMessage()}")

    logger = logging.getLogger("unstuck")
    handler, level = Keep(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield lines
    logger.removeHandler(handler)
    logger.setLevel(level)


def make(tmp_path: Path, *sessions, on_batch=None, poll: bool = False, filter_=None, safety: bool = False,
         safety_ms: int = 5000):
    clock = Clock()
    fake = FakeWatch(clock, *sessions)
    waits: list[float] = []
    batches: list[set] = []
    states: list[dict] = []

    def wait(seconds):
        waits.append(seconds)
        clock.advance(seconds)

    watcher = Watcher([tmp_path], filter_ or (lambda change, path: True), on_batch or batches.append,
                      clock=clock, watch=fake, wait=wait, on_state=states.append, safety_ms=safety_ms,
                      decide=lambda roots, forced: Decision(poll, "test filesystem", safety))
    fake.watcher = watcher
    return watcher, fake, clock, waits, batches, states


def modes(states):
    return [(s["mode"], s["watching"]) for s in states]


def test_a_batch_is_delivered_and_the_state_says_inotify(tmp_path, logs):
    batch = {(Change.modified, str(tmp_path / "a.py"))}
    watcher, fake, clock, waits, batches, states = make(tmp_path, starts(Tick(), batch, Tick()))
    watcher.run()
    assert batches == [batch]
    state = watcher.state()
    assert (state["mode"], state["reason"], state["restarts"], state["error"]) == ("inotify", "test filesystem", 0, None)
    assert state["last_change"] == clock.now - 1.0  # the batch came one tick before the end
    assert logs[0] == f"INFO watching {tmp_path} with inotify: test filesystem"


def test_watch_limit_at_start_polls_with_one_line_naming_the_sysctl_and_a_command(tmp_path, logs):
    watcher, fake, clock, waits, batches, states = make(tmp_path, fails(WATCH_LIMIT), starts(Tick(), Tick()))
    watcher.run()
    assert [c["polling"] for c in fake.calls][:2] == [False, True]
    assert modes(states) == [("polling", False), ("polling", True)]
    assert states[-1]["reason"] == "fs.inotify.max_user_watches reached" and "MaxFilesWatch" in states[-1]["error"]
    warnings = [line for line in logs if line.startswith("WARNING")]
    assert len(warnings) == 1
    assert "sudo sysctl -w fs.inotify.max_user_watches=524288" in warnings[0]
    assert "polling every 500 ms" in warnings[0] and f"again every {INOTIFY_RETRY_S:g} s" in warnings[0]
    assert waits == []  # no backoff: polling starts at once
    assert watcher.state()["restarts"] == 0


def test_instance_limit_names_max_user_instances(tmp_path, logs):
    watcher, *_ = make(tmp_path, fails(INSTANCE_LIMIT), starts(Tick()))
    watcher.run()
    warning, = [line for line in logs if line.startswith("WARNING")]
    assert "fs.inotify.max_user_instances" in warning and "sysctl -w fs.inotify.max_user_instances=512" in warning


def test_inotify_is_tried_again_every_minute_and_taken_back_when_it_works(tmp_path, logs):
    polling = starts(*[Tick(10.0) for _ in range(13)])  # 130 s of polling
    probe_fails = fails(WATCH_LIMIT)

    def probe_works(clock, stop_event):
        assert stop_event.is_set()  # a probe: start, then stop at once
        return iter(())

    watcher, fake, clock, waits, batches, states = make(
        tmp_path, fails(WATCH_LIMIT), polling, probe_fails, probe_works, starts(Tick()))
    started = clock.now
    watcher.run()
    probes = [c for c in fake.calls if c["probe"]]
    assert [round(c["at"] - started) for c in probes] == [60, 120]
    assert fake.calls[-1]["polling"] is False and not fake.calls[-1]["probe"]  # inotify again
    assert watcher.state()["mode"] == "inotify" and watcher.state()["error"] is None
    assert sum("switching back from polling" in line for line in logs) == 1
    assert sum(line.startswith("WARNING") for line in logs) == 1  # the failed probe says nothing


def test_no_retry_while_the_watch_limit_is_below_the_tree_and_one_once_it_is_raised(tmp_path, monkeypatch):
    from unstuck.watching import inotify_limits

    limit = {"value": 0}  # below the tree's one directory: a try could only fail
    monkeypatch.setattr(inotify_limits, "current_limit", lambda kind: limit["value"])

    def raise_limit():
        limit["value"] = 524288

    polling = starts(*[Tick(30.0) for _ in range(4)], raise_limit, *[Tick(30.0) for _ in range(2)])
    probe_works = lambda clock, stop_event: iter(())  # noqa: E731
    watcher, fake, clock, waits, batches, states = make(tmp_path, fails(WATCH_LIMIT), polling, probe_works,
                                                        starts(Tick()))
    started = clock.now
    watcher.run()
    # Due at 60 and 120 s, skipped: the limit was below the tree. Raised at 120 s: tried at 180 s, and it works.
    assert [round(c["at"] - started) for c in fake.calls if c["probe"]] == [180]
    assert watcher.state()["mode"] == "inotify"


def test_a_failure_restarts_with_growing_backoff_and_counts_restarts(tmp_path, logs):
    boom = RuntimeError("error in underlying watcher: boom")
    watcher, fake, clock, waits, batches, states = make(
        tmp_path, *[fails(boom) for _ in range(7)], starts(Tick()))
    watcher.run()
    assert waits == [0.5, 1.0, 2.0, 4.0, RESTART_MAX_S, RESTART_MAX_S, RESTART_MAX_S]
    assert watcher.state()["restarts"] == 7
    assert ("restarting", False) in modes(states) and modes(states)[-1] == ("inotify", True)
    # The same failure again and again before it watches again: one line, then one when it is back.
    assert [line for line in logs if line.startswith("WARNING")] == [
        "WARNING file watcher stopped (RuntimeError: error in underlying watcher: boom); restarting it in 0.5 s"]
    assert logs[-1] == "INFO file watcher running again (inotify) after 7 restart(s)"


def test_backoff_starts_over_after_a_watcher_that_ran_a_while(tmp_path):
    boom = RuntimeError("boom")
    watcher, fake, clock, waits, *_ = make(
        tmp_path, starts(Tick(), boom), starts(Tick(), boom), starts(Tick(STABLE_AFTER_S), boom), starts(Tick()))
    watcher.run()
    assert waits == [0.5, 1.0, 0.5]


def test_a_restart_while_it_was_watching_is_logged_each_time(tmp_path, logs):
    boom = RuntimeError("boom")
    watcher, *_ = make(tmp_path, starts(Tick(), boom), starts(Tick(), boom), starts(Tick()))
    watcher.run()
    assert sum(line.startswith("WARNING file watcher stopped") for line in logs) == 2


def test_a_callback_that_raises_restarts_and_the_missed_change_comes_again(tmp_path, logs):
    saved = tmp_path / "main.py"
    calls = []

    def on_batch(changes):
        calls.append(changes)
        if len(calls) == 1:
            raise ValueError("callback bug")

    def save():
        saved.write_text("x = 1\n")
    watcher, fake, clock, waits, batches, states = make(
        tmp_path, starts(save, {(Change.modified, str(saved))}), starts(Tick()), on_batch=on_batch)
    watcher.run()
    assert len(calls) == 2 and (Change.modified, str(saved)) in calls[1]
    assert watcher.state()["restarts"] == 1
    assert any("ValueError: callback bug" in line for line in logs)


def test_a_directory_the_app_creates_is_not_a_change_but_a_new_package_is(tmp_path, monkeypatch):
    monkeypatch.setattr("unstuck.watching.watcher.inotify_limits.unwatched", lambda dirs: [])  # inotify watches them
    watched = WatchFilter([tmp_path], DEFAULT_WATCH, DEFAULT_IGNORE)
    cache, pkg = tmp_path / ".data", tmp_path / "pkg"

    def app_writes():  # at import: a cache directory and a SQLite file in it
        (cache / "cache").mkdir(parents=True)
        (cache / "app.sqlite3").write_bytes(b"SQLite format 3\0")

    def checkout():  # a new package whose file was written before inotify watched the directory
        pkg.mkdir()
        (pkg / "models.py").write_text("x = 1\n")
    watcher, fake, clock, waits, batches, states = make(
        tmp_path, starts(app_writes, {(Change.added, str(cache))}, Tick(), checkout, {(Change.added, str(pkg))}),
        filter_=watched)
    watcher.run()
    assert batches == [{(Change.added, str(pkg))}]
    assert watcher.state()["restarts"] == 0


def test_a_filter_that_raises_restarts_the_watcher(tmp_path):
    def bad_filter(change, path):
        raise KeyError(path)

    def session(clock, stop_event):  # watchfiles calls the filter inside its generator
        stop_event.is_set()
        bad_filter(Change.modified, "/w/x.py")
        yield set()
    watcher, fake, clock, waits, batches, states = make(tmp_path, session, starts(Tick()))
    watcher.run()
    assert watcher.state()["restarts"] == 1
    assert [s["error"] for s in states if s["mode"] == "restarting"] == ["KeyError: '/w/x.py'"]


def test_watchfiles_ending_by_itself_is_a_failure(tmp_path, logs):
    watcher, fake, clock, waits, *_ = make(tmp_path, starts(Tick()), starts(Tick()))  # the first one just ends
    watcher.run()
    assert watcher.state()["restarts"] == 1 and waits == [0.5]
    assert any("WatchEnded: watchfiles stopped watching without being asked to" in line for line in logs)


def test_nothing_changed_while_down_means_no_catch_up_batch(tmp_path):
    (tmp_path / "old.py").write_text("")
    watcher, fake, clock, waits, batches, states = make(tmp_path, starts(Tick(), RuntimeError("boom")), starts(Tick()))
    clock.advance(CATCH_UP_MARGIN_S + 10)  # the file is older than the margin when the watcher starts
    watcher.run()
    assert batches == []


def test_a_missing_root_is_waited_for_and_its_content_delivered(tmp_path, logs):
    root = tmp_path / "app"
    root.mkdir()

    def delete_root():
        os.rmdir(root)

    def recreate_root():
        root.mkdir()
        (root / "main.py").write_text("")
        # Written "now" on the fake clock the watcher runs on (the real mtime may be seconds behind it, or
        # a few ms before the clock's start: the kernel stamps files with a coarse clock).
        os.utime(root / "main.py", (clock.now, clock.now))

    watcher, fake, clock, waits, batches, states = make(root, starts(Tick(), delete_root, Tick()), starts(Tick()))
    watcher._wait = lambda seconds: (waits.append(seconds), clock.advance(seconds),
                                     len(waits) == 3 and recreate_root())
    watcher.run()
    assert waits == [0.5, 1.0, 2.0]  # two tries found no directory; the third one watches
    assert len(fake.calls) == 2  # the root is checked before a watcher is started
    assert any((Change.modified, str(root / "main.py")) in batch for batch in batches)
    assert [line for line in logs if line.startswith("WARNING")] == [
        f"WARNING file watcher stopped (RootGone: {root} does not exist); restarting it in 0.5 s"]
    assert (watcher.state()["mode"], watcher.state()["error"]) == ("inotify", None)


def test_a_replaced_root_restarts_the_watcher(tmp_path):
    root = tmp_path / "app"
    root.mkdir()

    def replace_root():
        os.rename(root, tmp_path / "old")
        root.mkdir()

    watcher, fake, clock, waits, batches, states = make(root, starts(Tick(), replace_root, Tick()), starts(Tick()))
    watcher.run()
    assert watcher.state()["restarts"] == 1 and len(fake.calls) == 2
    assert [s["error"] for s in states if s["mode"] == "restarting"] == [
        f"RootGone: {root} was replaced by another directory"]


def test_a_root_reported_deleted_restarts_the_watcher_even_if_it_looks_the_same(tmp_path):
    # ext4 may give a directory recreated at once the deleted one's inode number: the event is what tells.
    root = tmp_path / "app"
    root.mkdir()
    watcher, fake, clock, waits, batches, states = make(root, starts(Tick()), starts(Tick()))
    fake.sessions[0] = starts(lambda: fake.watch_filter(Change.deleted, str(root)), Tick())
    watcher.run()
    assert [s["error"] for s in states if s["mode"] == "restarting"] == [f"RootGone: {root} was deleted or moved"]


def test_stop_during_backoff_ends_the_thread(tmp_path):
    watcher, fake, clock, waits, *_ = make(tmp_path, fails(RuntimeError("boom")), starts(Tick()))
    watcher._wait = lambda seconds: watcher.stop()
    watcher.run()
    assert len(fake.calls) == 1


def test_polling_decided_by_the_mount_never_probes_inotify(tmp_path, logs):
    watcher, fake, *_ = make(tmp_path, starts(*[Tick(30.0) for _ in range(5)]), poll=True)
    watcher.run()
    assert [c["polling"] for c in fake.calls[:1]] == [True] and not any(c["probe"] for c in fake.calls)
    assert logs[0] == f"INFO watching {tmp_path} by polling every 500 ms: test filesystem"


def test_unstuck_status_reads_what_the_watcher_publishes(tmp_path):
    """The contract between the watcher's state and `unstuck status` (which reads it from the state file)."""
    import time

    from unstuck.cli import format_status

    watcher, *_ = make(tmp_path)
    published = watcher.state()
    lines = format_status({"state": "serving", "port": 8000, "watcher": published}, now=time.time()).splitlines()
    shown = [line for line in lines if line.startswith("watcher:")]
    assert shown == [f"watcher:      {published['mode']} ({published['reason']}), no change yet"], lines


def on_a_share(tmp_path, *steps):
    """A watcher on a share that may drop events, over app.py, playing `steps` in which LOOK is one look of
    its safety poll."""
    app = tmp_path / "app.py"
    app.write_text("x = 1\n")
    made = make(tmp_path, starts(*[(lambda: made[0].safety_check()) if step is LOOK else step for step in steps]),
                safety=True)
    made[0].run()
    return app, made


LOOK = object()


def test_on_a_share_that_may_drop_events_what_they_missed_is_delivered_said_once_and_polled_fast(tmp_path, logs):
    app = tmp_path / "app.py"
    app, (watcher, fake, clock, waits, batches, states) = on_a_share(
        tmp_path, LOOK, Tick(5.0), lambda: app.write_text("x = 2\n"), LOOK,  # written beneath the share: no event
        Tick(0.5), lambda: app.unlink(), LOOK)
    assert logs[0] == f"INFO watching {tmp_path} with inotify, and polling every 5000 ms for what events miss: " \
                      "test filesystem"
    assert batches == [{(Change.modified, str(app))}, {(Change.deleted, str(app))}]
    warnings = [line for line in logs if line.startswith("WARNING")]
    assert warnings == [f"WARNING the safety poll found 1 change(s) under {tmp_path} that no inotify event reported "
                        f"({app}): this mount drops events, so it is polled every 500 ms from now on, besides inotify"]
    assert states[-1]["safety_poll_ms"] == 500 and states[-1]["missed_by_events"] == 2
    assert states[-1]["first_missed"] == str(app) and states[-1]["mode"] == "inotify"


def test_the_safety_poll_takes_no_look_before_the_watcher_watches(tmp_path):
    (tmp_path / "app.py").write_text("x = 1\n")
    watcher, fake, clock, waits, batches, states = make(tmp_path, starts(Tick()), safety=True)
    # A look now would only take stock, and the next one, an interval later, could not judge either (the
    # watcher started after it): a change made beneath the share meanwhile would wait two intervals.
    assert watcher.safety_check() is False and watcher._safety.due_at() == clock.now
    watcher.run()
    assert watcher.safety_check() is True and watcher._safety.due_at() == clock.now + 5.0


def test_on_a_share_changes_the_events_reported_are_delivered_once_and_the_poll_stays_slow(tmp_path, logs):
    app = tmp_path / "app.py"
    app, (watcher, fake, clock, waits, batches, states) = on_a_share(
        tmp_path, LOOK, Tick(2.0), lambda: app.write_text("x = 2\n"), {(Change.modified, str(app))}, Tick(3.0), LOOK)
    assert batches == [{(Change.modified, str(app))}]
    assert not any(line.startswith("WARNING") for line in logs)
    assert watcher.state()["safety_poll_ms"] == 5000 and watcher.state()["missed_by_events"] == 0


def test_a_safety_poll_of_0_ms_is_none(tmp_path, logs):
    watcher, *_ = make(tmp_path, starts(Tick()), safety=True, safety_ms=0)
    watcher.run()
    assert watcher.state()["safety_poll_ms"] is None and logs[0].startswith(f"INFO watching {tmp_path} with inotify: ")
