"""What changed while no watcher watched: found from ctimes on a real temp tree."""

import os
import time
from pathlib import Path

from watchfiles import Change

from unstuck.watching.catch_up import changes_since
from unstuck.config import DEFAULT_IGNORE, DEFAULT_WATCH
from unstuck.watching.watch_filter import WatchFilter


def settled_tree(root: Path) -> float:
    """A tree whose every file and directory is older than the returned time."""
    for rel in ("app/main.py", "app/pkg/mod.py", "app/server.log", ".venv/lib/site.py", "node_modules/x/i.py"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("old\n")
    past = time.time() - 100
    for directory, _, files in os.walk(root):
        for path in [directory, *(os.path.join(directory, f) for f in files)]:
            os.utime(path, (past, past))
    # ctime cannot be set, and file times come from the kernel's coarse clock, a few ms behind time.time():
    # wait until a file written now gets a ctime past the tree's newest, and past the time returned.
    newest = max(os.stat(os.path.join(d, n)).st_ctime for d, subdirs, files in os.walk(root) for n in files + subdirs)
    since = time.time()
    clock_probe = root.parent / f"{root.name}.clock"
    while True:
        clock_probe.write_text("")
        if os.stat(clock_probe).st_ctime > max(newest, since):
            clock_probe.unlink()
            return since
        time.sleep(0.001)


def test_nothing_changed(tmp_path):
    since = settled_tree(tmp_path)
    assert changes_since([tmp_path], WatchFilter([tmp_path], DEFAULT_WATCH, DEFAULT_IGNORE), since) == set()


def test_a_file_copied_with_its_old_mtime_counts(tmp_path):
    since = settled_tree(tmp_path)
    mod = tmp_path / "app" / "pkg" / "mod.py"
    old = os.stat(mod).st_mtime
    mod.write_text("new\n")
    os.utime(mod, (old, old))  # as cp -p, rsync -a or tar x leave it
    found = changes_since([tmp_path], WatchFilter([tmp_path], DEFAULT_WATCH, DEFAULT_IGNORE), since)
    assert found == {(Change.modified, str(mod))}


def test_a_deleted_file_shows_as_its_directory(tmp_path):
    since = settled_tree(tmp_path)
    (tmp_path / "app" / "pkg" / "mod.py").unlink()
    found = changes_since([tmp_path], WatchFilter([tmp_path], DEFAULT_WATCH, DEFAULT_IGNORE), since)
    assert found == {(Change.modified, str(tmp_path / "app" / "pkg"))}


def test_a_file_deleted_from_the_root_shows_as_the_root(tmp_path):
    (tmp_path / "settings.toml").write_text("")
    since = settled_tree(tmp_path)
    (tmp_path / "settings.toml").unlink()
    found = changes_since([tmp_path], WatchFilter([tmp_path], DEFAULT_WATCH, DEFAULT_IGNORE), since)
    assert found == {(Change.modified, str(tmp_path))}


def test_ignored_files_and_directories_are_neither_reported_nor_walked(tmp_path):
    since = settled_tree(tmp_path)
    with open(tmp_path / "app" / "server.log", "a") as log:
        log.write("more\n")
    (tmp_path / ".venv" / "lib" / "site.py").write_text("changed\n")
    asked = []
    flt = WatchFilter([tmp_path], DEFAULT_WATCH, DEFAULT_IGNORE)

    def spy(change, path):
        asked.append(path)
        return flt(change, path)
    assert changes_since([tmp_path], spy, since) == set()
    assert not any("/.venv/" in path or "/node_modules/" in path for path in asked)
