"""The Watcher with real watchfiles on temp dirs: changes arrive, and keep arriving after the watcher
died, after its root was deleted or replaced, and when inotify's per-user limits are reached for real.

The limits are lowered in a user namespace of the test's own (`unshare --user --map-root-user`), where
/proc/sys/user/max_inotify_* belong to that namespace: the kernel then fails inotify_init with EMFILE and
inotify_add_watch with ENOSPC exactly as on a host whose limits are used up, and the host's limits are
never touched.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from repo import REPO
from unstuck.config import DEFAULT_IGNORE, DEFAULT_WATCH
from unstuck.watching.watch_filter import WatchFilter
from unstuck.watching.watcher import Watcher
from waiting import wait_until

PROBE = REPO / "tests" / "host" / "watcher_probe.py"


def next_second(*paths: Path) -> None:
    """Wait until the clock is a second past the newest mtime of `paths`. watchfiles 1.3.0's polling compares
    mtimes to the second (samuelcolvin/watchfiles#319, open): a write within the second of the version it
    last saw goes unseen; the Watcher catches such a save itself (RecentSaves), which its own test checks
    (test_polling_sees_a_second_save_within_the_same_second). Tests of other things write after that second,
    so that they test only what they are about."""
    newest = max(int(os.stat(p).st_mtime) for p in paths)
    wait_until("the next second", lambda: (int(time.time()) > newest, f"{time.time()} vs {newest}"))


def tree(root: Path, packages: int = 3) -> Path:
    for i in range(packages):
        package = root / f"pkg{i}"
        package.mkdir(parents=True)
        (package / "__init__.py").write_text("")
        (package / "mod.py").write_text(f"X = {i}\n")
    return root


class Batches:
    """What a Watcher delivered; on_batch for it."""

    def __init__(self, fail_first: int = 0) -> None:
        self.seen: list[set] = []
        self.fail_first = fail_first
        self.lock = threading.Lock()

    def __call__(self, changes) -> None:
        with self.lock:
            self.seen.append(changes)
            if len(self.seen) <= self.fail_first:
                raise RuntimeError("the callback failed")

    def wait_for(self, path: Path, after: int = 0, timeout: float = 30.0) -> int:
        """Wait until a batch (from the `after`-th on) names `path`; return the index just past it."""
        def probe():
            with self.lock:
                for i, batch in enumerate(self.seen[after:], after):
                    if any(p == str(path) for _, p in batch):
                        return True, str(i + 1)
                return False, f"batches so far: {self.seen}"
        return int(wait_until(f"a batch with {path}", probe, timeout))


@pytest.fixture
def watching(tmp_path):
    started = []

    def start(root: Path, on_batch, poll: bool = False) -> Watcher:
        watcher = Watcher([root], WatchFilter([root], DEFAULT_WATCH, DEFAULT_IGNORE), on_batch, force_polling=poll,
                          poll_ms=100, step_ms=20)
        watcher.start()
        started.append(watcher)
        wait_until("the watcher watches", lambda: (watcher.state()["watching"], str(watcher.state())))
        return watcher

    yield start
    for watcher in started:
        watcher.stop()


def test_a_saved_file_is_delivered(tmp_path, watching):
    root = tree(tmp_path / "app")
    batches = Batches()
    watcher = watching(root, batches)
    (root / "pkg1" / "mod.py").write_text("X = 'saved'\n")
    batches.wait_for(root / "pkg1" / "mod.py")
    assert watcher.state()["mode"] == "inotify" and watcher.state()["last_change"] is not None


@pytest.mark.parametrize("poll", [False, True], ids=["inotify", "polling"])
def test_after_the_watcher_died_the_change_that_killed_it_and_later_ones_arrive(tmp_path, watching, poll):
    root = tree(tmp_path / "app")
    batches = Batches(fail_first=1)  # the callback raises on the first batch: the watching thread's loop ends
    watcher = watching(root, batches, poll)
    next_second(root / "pkg0" / "mod.py")
    (root / "pkg0" / "mod.py").write_text("X = 'first'\n")
    seen = batches.wait_for(root / "pkg0" / "mod.py")  # delivered, and the callback failed
    seen = batches.wait_for(root / "pkg0" / "mod.py", after=seen)  # delivered again after the restart
    assert watcher.state()["restarts"] == 1
    (root / "pkg2" / "mod.py").write_text("X = 'later'\n")
    batches.wait_for(root / "pkg2" / "mod.py", after=seen)


def test_a_deleted_and_recreated_root_keeps_being_watched(tmp_path, watching):
    root = tree(tmp_path / "app")
    batches = Batches()
    watcher = watching(root, batches)
    shutil.rmtree(root)
    tree(root / "fresh", packages=1)  # recreated at once, as by a sync tool: inotify alone would report nothing
    seen = batches.wait_for(root / "fresh" / "pkg0" / "mod.py")  # written while no watcher watched it
    wait_until("the watcher watches again", lambda: (watcher.state()["watching"], str(watcher.state())))
    (root / "fresh" / "pkg0" / "new.py").write_text("")
    batches.wait_for(root / "fresh" / "pkg0" / "new.py", after=seen)
    assert watcher.state()["restarts"] >= 1


def test_a_root_replaced_by_rename_keeps_being_watched(tmp_path, watching):
    root = tree(tmp_path / "app")
    batches = Batches()
    watching(root, batches)
    staged = tree(tmp_path / "app.new", packages=2)
    (staged / "pkg1" / "extra.py").write_text("")
    os.rename(root, tmp_path / "app.old")
    os.rename(staged, root)
    seen = batches.wait_for(root / "pkg1" / "extra.py")  # in the new directory only
    (root / "pkg1" / "mod.py").write_text("X = 'after the swap'\n")
    batches.wait_for(root / "pkg1" / "mod.py", after=seen)


# -- inotify limits, for real, in a user namespace ---------------------------------------------------------

class Probe:
    """tests/host/watcher_probe.py in a user namespace of its own, with its inotify limits lowered."""

    def __init__(self, root: Path, *args: str) -> None:
        self.lines: list[str] = []
        self.lock = threading.Lock()
        self.proc = subprocess.Popen(
            ["unshare", "--user", "--map-root-user", sys.executable, str(PROBE), str(root), *args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            with self.lock:
                self.lines.append(line.rstrip("\n"))

    def reports(self, key: str) -> list:
        with self.lock:
            lines = list(self.lines)
        return [json.loads(line[3:])[key] for line in lines if line.startswith("@@ ") and key in json.loads(line[3:])]

    def logs(self) -> list[str]:
        with self.lock:
            return [line for line in self.lines if not line.startswith("@@ ")]

    def wait_batch(self, path: Path, after: int = 0) -> int:
        def probe():
            batches = self.reports("batch")
            for i, batch in enumerate(batches[after:], after):
                if any(p == str(path) for _, p in batch):
                    return True, str(i + 1)
            return False, "\n".join(self.lines[-20:])
        return int(wait_until(f"a batch with {path}", probe))

    def wait_state(self, what: str, check) -> dict:
        def probe():
            states = self.reports("state")
            return bool(states) and check(states[-1]), "\n".join(self.lines[-20:])
        wait_until(what, probe)
        return self.reports("state")[-1]

    def send(self, command: str) -> None:
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.send("quit")
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(timeout=10)


def _user_namespaces_work() -> bool:
    try:
        return subprocess.run(["unshare", "--user", "--map-root-user", "sh", "-c",
                               "echo 5 > /proc/sys/user/max_inotify_watches"], capture_output=True).returncode == 0
    except OSError:
        return False


needs_userns = pytest.mark.skipif(not _user_namespaces_work(),
                                  reason="needs unprivileged user namespaces with writable /proc/sys/user")


@pytest.fixture
def probe():
    started = []

    def start(root: Path, *args: str) -> Probe:
        started.append(Probe(root, *args))
        return started[-1]

    yield start
    for p in started:
        p.close()


def warnings(p: Probe) -> list[str]:
    return [line for line in p.logs() if line.startswith("WARNING")]


@needs_userns
def test_no_inotify_instance_left_polls_says_why_once_and_takes_inotify_back(tmp_path, probe):
    root = tree(tmp_path / "app")
    p = probe(root, "--instances", "0", "--retry", "0.5")  # inotify_init fails with EMFILE
    state = p.wait_state("polling because of the instance limit", lambda s: s["mode"] == "polling" and s["watching"])
    assert state["reason"] == "fs.inotify.max_user_instances reached" and "os error 24" in state["error"]
    next_second(root / "pkg0" / "mod.py")
    (root / "pkg0" / "mod.py").write_text("X = 'polled'\n")
    seen = p.wait_batch(root / "pkg0" / "mod.py")
    line, = warnings(p)
    assert "inotify instance limit is reached" in line
    assert "sudo sysctl -w fs.inotify.max_user_instances=512" in line
    assert p.proc.poll() is None  # never crashed
    p.send("limits 128 100000")  # the limit is raised: the next retry takes inotify back
    p.wait_state("inotify again", lambda s: s["mode"] == "inotify" and s["watching"])
    assert sum("switching back from polling" in line for line in p.logs()) == 1
    (root / "pkg1" / "mod.py").write_text("X = 'inotify'\n")
    p.wait_batch(root / "pkg1" / "mod.py", after=seen)
    assert len(warnings(p)) == 1


@needs_userns
def test_too_few_watches_for_the_tree_polls_and_delivers(tmp_path, probe):
    root = tree(tmp_path / "app", packages=6)  # 7 directories
    p = probe(root, "--watches", "3", "--retry", "0.5")  # inotify_add_watch fails with ENOSPC on the 4th
    state = p.wait_state("polling because of the watch limit", lambda s: s["mode"] == "polling" and s["watching"])
    assert state["reason"] == "fs.inotify.max_user_watches reached"
    next_second(root / "pkg5" / "mod.py")
    (root / "pkg5" / "mod.py").write_text("X = 'polled'\n")
    p.wait_batch(root / "pkg5" / "mod.py")
    line, = warnings(p)
    assert "fs.inotify.max_user_watches = 3" in line and "7 directories" in line
    assert "sudo sysctl -w fs.inotify.max_user_watches=524288" in line
    p.send("limits 128 100000")
    p.wait_state("inotify again", lambda s: s["mode"] == "inotify" and s["watching"])


@needs_userns
def test_watches_running_out_later_do_not_leave_a_new_package_unwatched(tmp_path, probe):
    root = tree(tmp_path / "app", packages=2)  # 3 directories: exactly the limit
    p = probe(root, "--watches", "3", "--retry", "3600")
    p.wait_state("watching with inotify", lambda s: s["mode"] == "inotify" and s["watching"])
    package = root / "newpkg"
    package.mkdir()  # notify gets no watch for it and says nothing
    (package / "mod.py").write_text("X = 1\n")
    seen = p.wait_batch(package / "mod.py")
    state = p.wait_state("polling", lambda s: s["mode"] == "polling" and s["watching"])
    assert state["reason"] == "fs.inotify.max_user_watches reached"
    next_second(package / "mod.py")
    (package / "mod.py").write_text("X = 2\n")
    p.wait_batch(package / "mod.py", after=seen)
    assert len(warnings(p)) == 1


@needs_userns
def test_an_unreadable_directory_is_reported_with_a_hint_and_watching_resumes_when_fixed(tmp_path, probe):
    root = tree(tmp_path / "app")
    secret = root / "pgdata"
    secret.mkdir(mode=0o700)
    os.chown(secret, 54321, 54321)  # a uid the namespace does not map: its root cannot read it
    p = probe(root)
    state = p.wait_state("restarting", lambda s: s["mode"] == "restarting")
    assert "Permission denied" in state["error"]
    # The state line comes before the warning: waited for.
    wait_until("the hint is logged", lambda: (any("make that directory readable" in line for line in warnings(p)),
                                              str(warnings(p)[-3:])))
    secret.chmod(0o755)
    p.wait_state("watching again", lambda s: s["mode"] == "inotify" and s["watching"])
    (root / "pkg0" / "mod.py").write_text("X = 'fixed'\n")
    p.wait_batch(root / "pkg0" / "mod.py")


def test_polling_sees_a_second_save_within_the_same_second(tmp_path, watching):
    root = tree(tmp_path / "app")
    batches = Batches()
    watching(root, batches, poll=True)
    mod = root / "pkg0" / "mod.py"
    next_second(mod)
    wait_until("the start of a second", lambda: (time.time() % 1 < 0.3, str(time.time())))
    mod.write_text("X = 'first save'\n")
    seen = batches.wait_for(mod)
    mod.write_text("X = 'second save'\n")  # the same second, as an editor's format-on-save does
    assert int(os.stat(mod).st_mtime) == int(time.time()) or pytest.skip("the second save fell in the next second")
    batches.wait_for(mod, after=seen, timeout=5)  # polled every 100 ms: it comes within 5 s or never
