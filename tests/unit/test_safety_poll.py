"""The safety poll's decisions (SafetyNet, fake clock, made-up snapshots) and its walk (Tree, real files)."""

from __future__ import annotations

import os

import pytest
from watchfiles import Change

from unstuck.watching.safety_poll import BUDGET, SafetyNet, Tree, diff


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Disk(dict):
    """The files' stamps as a stat would give them when an event is heard (path -> stamp)."""


def looked_at(snapshot: dict):
    """A clock at 1000 s, a disk holding `snapshot`, and a safety net (5 s, fast 0.5 s) that took it in."""
    clock, disk = Clock(), Disk(snapshot)
    net = SafetyNet(5.0, 0.5, clock, disk.get)
    look(net, clock, snapshot)
    return clock, disk, net


def look(net: SafetyNet, clock: Clock, snapshot: dict, judging: bool = True):
    """One look of the poll at the clock's time: what it finds unheard, then still unheard."""
    unheard = net.unheard(snapshot, clock.now, judging)
    return net.confirm(unheard)


A = {"/w/a.py": (1, 1, 10, 7), "/w/b.py": (1, 1, 10, 8)}


def test_a_change_no_event_reported_is_missed_and_makes_the_poll_fast():
    clock = Clock()
    net = SafetyNet(5.0, 0.5, clock)
    assert look(net, clock, A) == (set(), False)  # the first look only takes stock
    assert net.due_at() == 1005.0
    clock.now = 1005.0
    changed = {"/w/a.py": (2, 2, 11, 7), "/w/c.py": (2, 2, 1, 9)}  # a.py written, b.py deleted, c.py added
    missed, first = look(net, clock, changed)
    assert missed == {(Change.modified, "/w/a.py"), (Change.deleted, "/w/b.py"), (Change.added, "/w/c.py")}
    assert first and net.first_missed == "/w/a.py" and net.missed == 3
    assert net.every_s == 0.5 and net.due_at() == 1005.5
    clock.now = 1005.5
    missed, first = look(net, clock, {"/w/a.py": (3, 3, 11, 7)})
    assert missed == {(Change.modified, "/w/a.py"), (Change.deleted, "/w/c.py")} and not first
    assert net.missed == 5 and net.first_missed == "/w/a.py"


def test_changes_events_reported_are_not_missed_and_the_poll_stays_slow():
    clock, disk, net = looked_at(A)
    clock.now = 1002.0
    disk["/w/a.py"] = (2, 2, 11, 7)
    del disk["/w/b.py"]
    net.heard({(Change.modified, "/w/a.py"), (Change.deleted, "/w/b.py")})
    clock.now = 1005.0
    assert look(net, clock, dict(disk)) == (set(), False)
    assert net.every_s == 5.0 and net.missed == 0


def test_an_event_for_a_save_does_not_vouch_for_a_later_one_no_event_reported():
    clock, disk, net = looked_at(A)
    clock.now = 1002.0
    disk["/w/a.py"] = (2, 2, 11, 7)
    net.heard({(Change.modified, "/w/a.py")})  # a save through the share, reported
    disk["/w/a.py"] = (3, 3, 12, 7)  # then one written on the other side, not reported
    clock.now = 1005.0
    assert look(net, clock, dict(disk)) == ({(Change.modified, "/w/a.py")}, True)


def test_an_event_that_comes_just_after_the_walk_still_counts():
    clock, disk, net = looked_at(A)
    clock.now = 1005.0
    disk["/w/a.py"] = (2, 2, 11, 7)
    unheard = net.unheard(dict(disk), clock.now, True)
    assert unheard == {(Change.modified, "/w/a.py")}
    clock.now = 1005.1
    net.heard({(Change.modified, "/w/a.py")})
    assert net.confirm(unheard) == (set(), False)


def test_a_directory_reported_by_an_event_vouches_for_the_files_beneath_it():
    clock = Clock()
    net = SafetyNet(5.0, 0.5, clock, {}.get)
    look(net, clock, A)
    clock.now = 1002.0
    net.heard({(Change.added, "/w/pkg")})  # moved in whole: one event for the directory
    clock.now = 1005.0
    moved_in = {**A, "/w/pkg/__init__.py": (2, 2, 0, 20), "/w/pkg/deep/mod.py": (2, 2, 5, 21)}
    assert look(net, clock, moved_in) == (set(), False)
    clock.now = 1010.0
    assert look(net, clock, {**moved_in, "/w/pkg/new.py": (3, 3, 5, 22)})[0] == {(Change.added, "/w/pkg/new.py")}


def test_an_event_heard_before_the_previous_look_vouches_for_nothing_later():
    clock = Clock()
    net = SafetyNet(5.0, 0.5, clock, {"/w/a.py": (2, 2, 11, 7)}.get)  # even with the stamp it has later
    net.heard({(Change.modified, "/w/a.py")})  # a save reported before the first look
    clock.now = 1001.0
    look(net, clock, A)
    clock.now = 1006.0
    missed, _ = look(net, clock, {**A, "/w/a.py": (2, 2, 11, 7)})  # a later save, unreported
    assert missed == {(Change.modified, "/w/a.py")}


def test_while_the_events_were_not_watched_nothing_is_judged():
    clock = Clock()
    net = SafetyNet(5.0, 0.5, clock)
    look(net, clock, A)
    clock.now = 1005.0
    assert look(net, clock, {}, judging=False) == (set(), False)  # the catch-up covers that time
    clock.now = 1010.0
    assert look(net, clock, {}) == (set(), False)  # compared with the last snapshot, not the first
    assert net.every_s == 5.0


def test_diff_names_each_kind_of_change():
    assert diff({"a": (1, 1, 1, 1), "b": (1, 1, 1, 2)}, {"a": (1, 2, 1, 1), "c": (1, 1, 1, 3)}) == {
        (Change.modified, "a"), (Change.deleted, "b"), (Change.added, "c")}


def test_the_tree_stamps_watched_files_only_and_sees_writes_adds_and_deletions(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "node_modules").mkdir()
    for name in ("app.py", "pkg/mod.py", "pkg/notes.log", "node_modules/x.py"):
        (tmp_path / name).write_text("x = 1\n")
    asked = []

    def watch_filter(change, path):
        asked.append(path)
        return not path.endswith((".log", "node_modules"))

    tree = Tree([tmp_path], watch_filter)
    first = tree.snapshot()
    assert set(first) == {str(tmp_path / "app.py"), str(tmp_path / "pkg/mod.py")}
    asked.clear()
    assert tree.snapshot() == first and asked == []  # unchanged directories are not listed again
    (tmp_path / "pkg/mod.py").write_text("x = 22\n")
    (tmp_path / "app.py").unlink()
    (tmp_path / "pkg/new.py").write_text("")
    assert diff(first, tree.snapshot()) == {(Change.modified, str(tmp_path / "pkg/mod.py")),
                                            (Change.deleted, str(tmp_path / "app.py")),
                                            (Change.added, str(tmp_path / "pkg/new.py"))}


def test_a_file_copied_in_with_its_old_times_is_seen(tmp_path):
    (tmp_path / "a.py").write_text("x = 1\n")
    tree = Tree([tmp_path], lambda change, path: True)
    before = tree.snapshot()
    st = os.stat(tmp_path / "a.py")
    (tmp_path / "a.py").write_text("x = 2\n")
    os.utime(tmp_path / "a.py", ns=(st.st_atime_ns, st.st_mtime_ns))  # what `cp -p` leaves
    assert diff(before, tree.snapshot()) == {(Change.modified, str(tmp_path / "a.py"))}


def test_a_look_that_costs_more_than_the_budget_stretches_the_interval_but_not_the_fast_one():
    clock, disk, net = looked_at(A)
    net.spent(0.01)  # 10 ms of CPU every 5 s: 0.2 % of a core
    assert net.every_s == 5.0
    net.spent(0.2)  # a large tree through a share: each look now costs more than 1 % of a core every 5 s
    assert net.every_s * BUDGET == pytest.approx(net.cost_s) and net.every_s > 5.0
    for _ in range(30):
        net.spent(0.08)
    assert net.every_s == pytest.approx(8.0, rel=0.01)  # 80 ms every 8 s: 1 %
    clock.now = 1010.0
    look(net, clock, {})  # a miss: polled fast from now on, whatever it costs
    assert net.every_s == 0.5
