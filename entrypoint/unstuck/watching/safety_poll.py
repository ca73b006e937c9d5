"""The safety poll: on a mount whose changes may not all raise inotify events (Docker Desktop, OrbStack,
Colima; see mounts.py), what did the events miss?

Every few seconds the watched files' stats are compared with the previous look (`Tree.snapshot`); a
difference that no event reported since that look began was missed by the events. It is delivered like an
event, and the first one switches the poll to the fast interval for good: a share that dropped one event
will drop more (docker/for-mac#7246, #4731). `SafetyNet` decides this from the snapshots, the paths the
events reported and a clock, without touching the filesystem; the thread that walks and waits is
Watcher._safety_loop.

Cost: one stat per watched directory and per watched file, and a directory is listed again only when its
own stamp changed (adding, removing or renaming an entry moves a directory's mtime). The watch filter is
asked once per path, when its directory is listed. On a FUSE share a stat is a round trip to the share's
daemon once the kernel's attribute cache (1 s) has expired: a look at 10,000 files took 50-80 ms of CPU in
a container through bindfs on a loaded 2-core machine, more than 1 % of a core every 5 s. So the interval
stretches to keep the poll within BUDGET (`make bench` measures it); after a miss it runs at the fast
interval whatever it costs, as polling instead of inotify would.
"""

from __future__ import annotations

import os
import threading
from typing import Callable

from unstuck.seams.watchfiles_seam import Change

BUDGET = 0.01  # of a core: the safety poll looks less often than asked on a tree where a look costs more
COST_WEIGHT = 0.3  # the newest look's share of the cost the interval is set from (the rest: earlier looks)

Changes = set[tuple[Change, str]]
Stamp = tuple[int, int, int, int]  # mtime_ns, ctime_ns (catches `cp -p`, `rsync -a`), size, inode
WatchFilter = Callable[[Change, str], bool]


def stamp_from(st: os.stat_result) -> Stamp:
    return st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino


def stamp_of(path: str) -> Stamp | None:
    try:
        return stamp_from(os.stat(path, follow_symlinks=False))
    except OSError:
        return None


class Tree:
    """The stamps of the files under `roots` that `watch_filter` watches."""

    def __init__(self, roots: list, watch_filter: WatchFilter) -> None:
        self.roots = [str(r) for r in roots]
        self.watch_filter = watch_filter
        # directory -> (its stamp when listed, the subdirectories and the watched files in it)
        self._listed: dict[str, tuple[Stamp, list[str], list[str]]] = {}

    def _list(self, directory: str) -> tuple[list[str], list[str]]:
        subdirs, files = [], []
        with os.scandir(directory) as entries:
            for entry in entries:
                try:
                    is_dir = entry.is_dir(follow_symlinks=False)
                except OSError:
                    continue
                # Change.added on a directory asks the filter only whether it is ignored (WatchFilter).
                if is_dir:
                    if self.watch_filter(Change.added, entry.path):
                        subdirs.append(entry.path)
                elif self.watch_filter(Change.modified, entry.path):
                    files.append(entry.path)
        return subdirs, files

    def snapshot(self) -> dict[str, Stamp]:
        found: dict[str, Stamp] = {}
        listed: dict[str, tuple[Stamp, list[str], list[str]]] = {}
        stack = list(self.roots)
        while stack:
            directory = stack.pop()
            try:
                stamp = stamp_from(os.stat(directory))
                known = self._listed.get(directory)
                if known is not None and known[0] == stamp:
                    subdirs, files = known[1], known[2]
                else:
                    subdirs, files = self._list(directory)
            except OSError:
                continue  # vanished or unreadable: its files are reported deleted
            listed[directory] = (stamp, subdirs, files)
            stack.extend(subdirs)
            for path in files:
                try:
                    found[path] = stamp_from(os.stat(path, follow_symlinks=False))
                except OSError:
                    continue
        self._listed = listed  # directories gone are forgotten
        return found


def diff(before: dict[str, Stamp], after: dict[str, Stamp]) -> Changes:
    changes: Changes = {(Change.deleted, path) for path in before.keys() - after.keys()}
    for path, stamp in after.items():
        old = before.get(path)
        if old is None:
            changes.add((Change.added, path))
        elif old != stamp:
            changes.add((Change.modified, path))
    return changes


class SafetyNet:
    """Which differences between two snapshots no event reported, and how often to look.

    A difference between the snapshots begun at t0 and t1 is a change made after the first look at its
    file, so after t0: it was reported if an event for that file was delivered after t0 and the file then
    had the stamp it has now (an event for an earlier save does not vouch for a later one no event
    reported). Events come a few milliseconds after a change, so a difference is judged unreported only
    if still unheard a moment after the second walk (`unheard`, then `confirm`).
    """

    def __init__(self, interval_s: float, fast_s: float, clock: Callable[[], float],
                 stamp: Callable[[str], Stamp | None] = stamp_of) -> None:
        self.interval_s = interval_s
        self.fast_s = fast_s
        self._clock = clock
        self._snapshot: dict[str, Stamp] | None = None
        self._taken_at = 0.0  # when the walk of the last snapshot began
        self._judged_since = 0.0  # when the walk of the snapshot before it began
        self._stamp = stamp
        self._heard: dict[str, tuple[float, Stamp | None]] = {}  # path -> when an event said so, its stamp then
        self._lock = threading.Lock()  # heard() is called by the events' thread, the rest by the poll's
        self.cost_s = 0.0  # CPU seconds a look takes (a moving average)
        self.missed = 0  # changes found by the poll that no event reported, in all
        self.first_missed: str | None = None  # the first of them; from then on the poll is fast

    @property
    def every_s(self) -> float:
        if self.first_missed is not None:
            return self.fast_s
        return max(self.interval_s, self.cost_s / BUDGET)

    def spent(self, cpu_s: float) -> None:
        """A look took `cpu_s` seconds of CPU."""
        self.cost_s = cpu_s if self.cost_s == 0.0 else (1 - COST_WEIGHT) * self.cost_s + COST_WEIGHT * cpu_s

    def due_at(self) -> float:
        return self._taken_at + self.every_s if self._snapshot is not None else self._clock()

    def heard(self, changes: Changes) -> None:
        """Events reported these changes now."""
        now = self._clock()
        stamps = {path: self._stamp(path) for _, path in changes}
        with self._lock:
            for path, stamp in stamps.items():
                self._heard[path] = (now, stamp)

    def unheard(self, snapshot: dict[str, Stamp], taken_at: float, judging: bool) -> Changes:
        """Keep `snapshot` (its walk began at `taken_at`); return what changed since the previous one with
        no event heard since that one began. `judging` False (the event watcher was not watching all along:
        its catch-up covers that time) only keeps the snapshot."""
        previous, self._snapshot = self._snapshot, snapshot
        self._judged_since, self._taken_at = self._taken_at, taken_at
        if previous is None or not judging:
            return set()
        return self._unheard_of(diff(previous, snapshot))

    def _unheard_of(self, changes: Changes) -> Changes:
        with self._lock:
            # What was heard before the previous walk began cannot vouch for anything any more.
            self._heard = {path: heard for path, heard in self._heard.items() if heard[0] >= self._judged_since}
            return {(change, path) for change, path in changes if not self._vouched_for(path)}

    def _vouched_for(self, path: str) -> bool:
        heard = self._heard.get(path)
        if heard is not None:
            return heard[1] == self._snapshot.get(path)  # None == None: reported deleted, and gone
        # A directory moved in or out, or created by a checkout before inotify watched it, is reported alone:
        # its event vouches for every file beneath it.
        while True:
            parent = os.path.dirname(path)
            if parent == path:
                return False
            if parent in self._heard:
                return True
            path = parent

    def confirm(self, changes: Changes) -> tuple[Changes, bool]:
        """Of `unheard`'s changes, those still unheard: missed by the events. True the first time."""
        missed = self._unheard_of(changes)
        first = bool(missed) and self.first_missed is None
        if missed:
            self.missed += len(missed)
            if first:
                self.first_missed = min(path for _, path in missed)
        return missed, first
