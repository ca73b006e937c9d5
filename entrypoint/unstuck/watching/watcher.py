"""The thread that watches the app's files and hands each batch of changes to the reloader, and that never
silently stops.

watchfiles does the watching: inotify, or polling where mounts.py finds a mount whose changes raise no
events. Left alone, `watchfiles.watch()` in a thread has three ways to stop for good without a word, and
the server then never reloads again; this module handles each:

- inotify limits, per user and shared by every container of that user on the host (see inotify_limits.py):
  watchfiles raises while creating its watcher, or silently watches nothing under a directory created once
  no watch is left. Either way this polls instead, says once why and how to raise the limit, and tries
  inotify again every `inotify_retry_s` (limits are often hit for a while only, when other containers or
  IDEs hold many watches, and polling costs CPU on every tree: a try costs what starting inotify costs).
- an exception (in watchfiles, the filter or the callback) ends the watching: it is restarted after a short
  backoff, and what changed while it was down is delivered as one batch (catch_up.py).
- the watched root deleted and recreated (a sync tool replacing the directory): inotify then watches
  the deleted directory and reports nothing more, without an error. The root's deletion (or move) is seen
  in the events, and its identity is checked about once a second (the new directory may get the old one's
  inode number); either way a watcher on the new directory is started.

On a mount whose changes may not all raise events (Docker Desktop, OrbStack, Colima: mounts.py), a second
thread runs the safety poll (safety_poll.py) beside inotify: what it finds that no event reported is
delivered, said once, and from then on it polls at the fast interval.

`state()` says which of these is going on, for `unstuck status`.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Callable

from unstuck.seams.watchfiles_seam import Change

from unstuck.watching import catch_up, inotify_limits, mounts, safety_poll, watch_stream
from unstuck.logs import log
from unstuck.watching.watch_filter import without_bare_dirs

# How often the watching loop wakes up when nothing changes, to check the root and retry inotify.
RUST_TIMEOUT_MS = 1000
# While polling because an inotify limit was reached, inotify is tried again this often.
INOTIFY_RETRY_S = 60.0
# Restarts after a failure wait 0.5, 1, 2, 4, 5, 5 ... s; a watcher that ran this long starts over at 0.5 s.
RESTART_FIRST_S = 0.5
RESTART_MAX_S = 5.0
STABLE_AFTER_S = 30.0
# File times may lag the clock a little (coarse kernel clock, or another machine's on a network mount):
# looking back a little further costs at most one extra reload after a restart.
CATCH_UP_MARGIN_S = 2.0
# notify adds the watch of a new directory just after reporting the directory: how often and how long
# to look again before deciding that no watch could be added.
NEW_DIR_CHECK_S = 0.05
NEW_DIR_CHECKS = 10
# The safety poll's walk ends a moment before the events of the last changes it saw are delivered: how long
# it waits for them before judging a change unreported (a batch comes within 2 steps of 20 ms of a change).
SAFETY_SETTLE_S = 0.3
# While no watcher watches, the safety poll looks again this often whether one does.
SAFETY_NOT_WATCHING_S = 0.1

Changes = set[tuple[Change, str]]


class RootGone(FileNotFoundError):
    """A watched root is missing, or is no longer the directory that was being watched."""


class WatchEnded(RuntimeError):
    """watchfiles stopped yielding without being asked to."""


class _Beat:
    """The stop event handed to watchfiles. Its Rust loop calls is_set() after every step once its watcher
    exists, so the first call means "watching now" (watchfiles has no other way to tell)."""

    def __init__(self, stop: threading.Event, on_first: Callable[[], None]) -> None:
        self._stop = stop
        self._on_first: Callable[[], None] | None = on_first

    def is_set(self) -> bool:
        if self._on_first is not None:
            on_first, self._on_first = self._on_first, None
            on_first()  # an exception here ends watchfiles' loop like one of its own
        return self._stop.is_set()


class RecentSaves:
    """Files saved in the last seconds, with their (mtime_ns, size, inode): what watchfiles' polling, which
    looks at mtimes to the second, may not see change again within the same second."""

    KEEP_S = 2.0

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._files: dict[str, tuple[tuple[int, int, int] | None, float]] = {}

    @staticmethod
    def _stamp(path: str) -> tuple[int, int, int] | None:
        try:
            st = os.stat(path)
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size, st.st_ino

    def remember(self, changes: Changes) -> None:
        until = self._clock() + self.KEEP_S
        for change, path in changes:
            if change != Change.deleted:
                self._files[path] = (self._stamp(path), until)

    def changed(self) -> Changes:
        now, missed = self._clock(), set()
        for path, (stamp, until) in list(self._files.items()):
            if now > until:
                del self._files[path]
                continue
            current = self._stamp(path)
            if current is not None and current != stamp:
                missed.add((Change.modified, path))
        return missed


def _hint(exc: BaseException) -> str:
    text = str(exc)
    if "Permission denied" in text:
        return " (make that directory readable by the server's user, or move it out of the watched directory)"
    return ""


class Watcher:
    """Watches `roots` on its own thread; `on_batch(changes)` is called there with each filtered batch."""

    def __init__(self, roots: list[Path], watch_filter: Callable[[Change, str], bool],
                 on_batch: Callable[[Changes], None], *, force_polling: bool | None = None, poll_ms: int = 500,
                 safety_ms: int = 5000, step_ms: int = 50, clock: Callable[[], float] = time.time,
                 on_state: Callable[[dict], None] | None = None, inotify_retry_s: float = INOTIFY_RETRY_S,
                 watch: Callable = watch_stream.watch, wait: Callable[[float], object] | None = None,
                 decide: Callable[[list[Path], bool | None], mounts.Decision] = mounts.decide_here) -> None:
        self.roots = [Path(r) for r in roots]
        self.watch_filter = watch_filter
        self.on_batch = on_batch
        self.poll_ms = poll_ms
        self.step_ms = step_ms
        self.inotify_retry_s = inotify_retry_s
        self._clock = clock
        self._on_state = on_state
        self._watch = watch  # watchfiles.watch; tests pass a fake that fails on cue
        self._stop = threading.Event()
        self._wait = wait or self._stop.wait  # backoff; returns early on stop()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._decision = decide(self.roots, force_polling)
        self._limit: inotify_limits.Limit | None = None  # set while polling because of an inotify limit
        self._retry_inotify_at = 0.0
        self._covered: float | None = None  # every change made before this time was delivered
        self._attempts = 0
        self._failures = 0  # in a row
        self._session_started: float | None = None  # when the current watcher began to watch
        self._logged_error: str | None = None
        self._root_names = {name for root in self.roots for name in (str(root), os.path.abspath(root))}
        self._root_gone: str | None = None  # a root whose deletion or move watchfiles reported
        self._safety_since = float("inf")  # when the safety poll's previous look began
        # The safety poll, where the mount may drop events (safety_ms 0: never).
        self._safety = (safety_poll.SafetyNet(safety_ms / 1000, poll_ms / 1000, clock)
                        if self._decision.safety and safety_ms > 0 else None)
        self._tree = safety_poll.Tree(self.roots, self.watch_filter) if self._safety is not None else None
        self._safety_thread: threading.Thread | None = None
        self._state = {"mode": "polling" if self._decision.poll else "inotify", "reason": self._decision.reason,
                       "since": clock(), "last_change": None, "restarts": 0, "error": None, "watching": False,
                       "safety_poll_ms": safety_ms if self._safety is not None else None,
                       "missed_by_events": 0, "first_missed": None}

    # -- the reloader's interface ------------------------------------------------------------------

    def start(self) -> None:
        self._covered = self._clock()
        self._thread = threading.Thread(target=self.run, daemon=True, name="watch")
        self._thread.start()
        if self._safety is not None:
            self._safety_thread = threading.Thread(target=self._safety_loop, daemon=True, name="safety-poll")
            self._safety_thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        for thread in (self._thread, self._safety_thread):
            if thread is not None and thread is not threading.current_thread():
                thread.join(timeout)

    def state(self) -> dict:
        with self._lock:
            return dict(self._state)

    # -- the thread ------------------------------------------------------------------------------------

    def run(self) -> None:
        where = ", ".join(map(str, self.roots))
        if self._decision.poll:
            log.info("watching %s by polling every %d ms: %s", where, self.poll_ms, self._decision.reason)
        elif self._safety is not None:
            log.info("watching %s with inotify, and polling every %d ms for what events miss: %s", where,
                     self._state["safety_poll_ms"], self._decision.reason)
        else:
            log.info("watching %s with inotify: %s", where, self._decision.reason)
        if self._covered is None:
            self._covered = self._clock()
        while not self._stop.is_set():
            mode = "polling" if self._decision.poll or self._limit is not None else "inotify"
            try:
                self._session(mode)
            except BaseException as exc:  # noqa: BLE001 - whatever ends the watching, it goes on
                if self._stop.is_set():
                    break
                self._failed(mode, exc)

    def _session(self, mode: str) -> None:
        """One watchfiles watcher, from its start until it fails, is stopped, or inotify is back."""
        polling = mode == "polling"
        self._attempts += 1
        self._session_started = None
        catch_up_since = self._covered if self._attempts > 1 else None
        identities = [self._identity(root) for root in self.roots]
        beat = _Beat(self._stop, lambda: self._watching(mode, catch_up_since))
        self._root_gone = None
        # Polling wakes up every poll interval at least, so that recently saved files are looked at again.
        timeout = min(RUST_TIMEOUT_MS, self.poll_ms) if polling else RUST_TIMEOUT_MS
        batches = self._watch(*self.roots, watch_filter=self._filter, stop_event=beat, force_polling=polling,
                              poll_delay_ms=self.poll_ms, step=self.step_ms, rust_timeout=timeout,
                              yield_on_timeout=True, raise_interrupt=False)
        recent = RecentSaves(self._clock)
        try:
            for changes in batches:
                returned_at = self._clock()
                if polling:
                    # watchfiles' poller compares mtimes to the second (samuelcolvin/watchfiles#319): a
                    # second save within the same second is never reported. Recently saved files are
                    # compared to the nanosecond here, and such a save delivered as a change of its own.
                    missed = recent.changed() - changes
                    if missed:
                        self._deliver(missed)
                    recent.remember(changes | missed)
                if changes:
                    heard = changes
                    if not polling:
                        self._check_new_dirs(changes)  # before looking into them: see without_bare_dirs
                    changes = without_bare_dirs(changes, self.watch_filter)
                    if changes:
                        self._deliver(changes)
                    if self._safety is not None:
                        self._safety.heard(heard)  # after the delivery: a stat per path, off the reload's path
                self._covered = returned_at
                if self._root_gone is not None:
                    raise RootGone(f"{self._root_gone} was deleted or moved")
                for root, identity in zip(self.roots, identities):
                    if self._identity(root) != identity:
                        raise RootGone(f"{root} was replaced by another directory")
                if self._limit is not None and returned_at >= self._retry_inotify_at:
                    if not self._limit.too_low_for(self.roots) and self._inotify_works():
                        log.info("inotify works again for %s: switching back from polling",
                                 ", ".join(map(str, self.roots)))
                        self._limit = None
                        return
                    self._retry_inotify_at = returned_at + self.inotify_retry_s
        finally:
            close = getattr(batches, "close", None)
            if close is not None:
                close()  # releases the inotify instance now, not when the generator is collected
        if not self._stop.is_set():
            raise WatchEnded("watchfiles stopped watching without being asked to")

    def _watching(self, mode: str, catch_up_since: float | None) -> None:
        """The new watcher watches: deliver what changed while none did, then say so."""
        now = self._clock()
        if catch_up_since is not None:
            missed = catch_up.changes_since(self.roots, self.watch_filter, catch_up_since - CATCH_UP_MARGIN_S)
            if missed:
                log.info("%d change(s) made while the file watcher was not watching", len(missed))
                self._deliver(missed)
            self._covered = now
        self._session_started = now
        recovered = self.state()["mode"] == "restarting"
        reason = self._decision.reason
        if mode == "polling" and self._limit is not None:
            reason = f"{self._limit.sysctl} reached"
        self._set(mode=mode, reason=reason, since=now, watching=True,
                  error=self._state["error"] if self._limit is not None else None)
        if recovered:
            log.info("file watcher running again (%s) after %d restart(s)", mode, self._state["restarts"])
        self._logged_error = None

    def _failed(self, mode: str, exc: BaseException) -> None:
        now = self._clock()
        limit = inotify_limits.classify(exc) if mode == "inotify" else None
        if limit is not None:
            self._limit = limit
            self._retry_inotify_at = now + self.inotify_retry_s
            log.warning("%s", limit.message(self.roots, self.poll_ms, self.inotify_retry_s))
            self._set(mode="polling", reason=f"{limit.sysctl} reached", since=now, watching=False, error=str(exc))
            return
        lived = now - self._session_started if self._session_started is not None else 0.0
        self._failures = 1 if lived >= STABLE_AFTER_S else self._failures + 1
        delay = min(RESTART_FIRST_S * 2 ** (self._failures - 1), RESTART_MAX_S)
        error = f"{type(exc).__name__}: {exc}"
        self._set(mode="restarting", reason=f"the {mode} watcher stopped; restarting it in {delay:g} s", since=now,
                  watching=False, error=error, restarts=self._state["restarts"] + 1)
        if error != self._logged_error:  # the same failure again before any watching: once is enough
            log.warning("file watcher stopped (%s)%s; restarting it in %g s", error, _hint(exc), delay)
            log.debug("file watcher failure", exc_info=exc)
        self._logged_error = error
        self._wait(delay)

    # -- the safety poll's thread ------------------------------------------------------------------------

    def _safety_loop(self) -> None:
        while not self._stop.is_set():
            delay = self._safety.due_at() - self._clock()
            if delay > 0 and self._stop.wait(delay):
                return
            try:
                if not self.safety_check() and self._stop.wait(SAFETY_NOT_WATCHING_S):
                    return
            except Exception as exc:  # noqa: BLE001 - the events go on; try again next time
                log.warning("the safety poll failed (%s: %s); trying again in %g s", type(exc).__name__, exc,
                            self._safety.every_s)
                log.debug("safety poll failure", exc_info=exc)
                self._stop.wait(self._safety.every_s)

    def safety_check(self) -> bool:
        """One look of the safety poll: deliver what changed that no event reported. False, without a look,
        while no watcher watches (at the start, between restarts): the first look after it does only takes
        stock, so the first one must come as soon as it watches, not an interval later."""
        with self._lock:
            if not self._state["watching"]:
                return False
        started, cpu = self._clock(), time.thread_time()
        snapshot = self._tree.snapshot()
        if self._safety_since != float("inf"):
            # Not the first look: it lists every directory and asks the filter about every path, which the
            # next looks do only where something changed; counted, it would space them out for minutes.
            self._safety.spent(time.thread_time() - cpu)
        every_ms = round(self._safety.every_s * 1000, -2)
        if every_ms != self._state["safety_poll_ms"]:
            self._set(safety_poll_ms=int(every_ms))  # stretched to stay within safety_poll.BUDGET, or fast
        with self._lock:
            # Only while inotify watched all along since the previous look: otherwise the catch-up after a
            # restart, or the poll that stands in for inotify, covers that time.
            judging = (self._state["mode"] == "inotify" and self._state["watching"]
                       and self._state["since"] <= self._safety_since)
        self._safety_since = started
        unheard = self._safety.unheard(snapshot, started, judging)
        if not unheard:
            return True
        self._wait(SAFETY_SETTLE_S)
        missed, first = self._safety.confirm(unheard)
        if not missed:
            return True
        if first:
            log.warning("the safety poll found %d change(s) under %s that no inotify event reported (%s): this "
                        "mount drops events, so it is polled every %d ms from now on, besides inotify",
                        len(missed), ", ".join(map(str, self.roots)), self._safety.first_missed, self.poll_ms)
        else:
            log.info("the safety poll found %d change(s) that no inotify event reported", len(missed))
        self._set(safety_poll_ms=int(round(self._safety.every_s * 1000)), missed_by_events=self._safety.missed,
                  first_missed=self._safety.first_missed)
        self._deliver(missed)
        return True

    # -- helpers ----------------------------------------------------------------------------------------

    def _filter(self, change: Change, path: str) -> bool:
        # watchfiles reports a root's deletion (or move away) like any path; the user's filter drops it.
        if change == Change.deleted and path in self._root_names:
            self._root_gone = path
        return self.watch_filter(change, path)

    def _deliver(self, changes: Changes) -> None:
        self.on_batch(changes)
        with self._lock:
            self._state["last_change"] = self._clock()

    @staticmethod
    def _identity(root: Path) -> tuple[int, int]:
        try:
            st = os.stat(root)
        except FileNotFoundError:
            raise RootGone(f"{root} does not exist") from None
        if st.st_nlink == 0:
            raise RootGone(f"{root} was deleted but is still mounted: it was replaced on the host; restart the "
                           f"container to mount the new one")
        return st.st_dev, st.st_ino

    def _check_new_dirs(self, changes: Changes) -> None:
        """Raise WatchLimitReached if a new directory got no inotify watch (notify says nothing then)."""
        new = [path for change, path in changes if change == Change.added and os.path.isdir(path)]
        if not new:
            return
        dirs = [d for top in new for d in self._dirs_under(top)]
        missing = inotify_limits.unwatched(dirs)
        for _ in range(NEW_DIR_CHECKS):
            if not missing or self._stop.is_set():
                return
            self._wait(NEW_DIR_CHECK_S)
            missing = inotify_limits.unwatched(missing)
        if missing:
            raise inotify_limits.WatchLimitReached(f"no inotify watch could be added for {missing[0]}")

    def _dirs_under(self, top: str) -> list[str]:
        found = []
        for directory, subdirs, _ in os.walk(top):
            found.append(directory)
            subdirs[:] = [d for d in subdirs if self.watch_filter(Change.added, os.path.join(directory, d))]
        return found

    def _inotify_works(self) -> bool:
        """Start an inotify watcher on the roots and stop it at once: does the limit still apply?"""
        stopped = threading.Event()
        stopped.set()
        try:
            for _ in self._watch(*self.roots, watch_filter=None, stop_event=stopped, force_polling=False, step=1,
                                 rust_timeout=RUST_TIMEOUT_MS, raise_interrupt=False):
                pass
        except Exception as exc:  # noqa: BLE001 - any failure means: keep polling
            log.debug("inotify still unavailable: %s", exc)
            return False
        return True

    def _set(self, **fields) -> None:
        with self._lock:
            self._state.update(fields)
            snapshot = dict(self._state)
        if self._on_state is not None:
            self._on_state(snapshot)
