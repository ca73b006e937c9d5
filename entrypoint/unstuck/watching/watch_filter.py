"""Which changed paths trigger a reload: watchfiles' DefaultFilter, narrowed to patterns the user edits.

DefaultFilter already skips .git, .venv, __pycache__, node_modules and common editor files; it does not
skip `venv`, logs or swap files of every editor, and it passes every file type, so log files and data
written by the app would reload it forever. This adds an include list and name-based excludes.

A new directory passes the filter (its files may have been written before inotify watched it, and raised
no event of their own), but it is a change only when a watched file is in it: a directory the app creates
while it starts or serves (a cache, uploads) is not a save. `without_bare_dirs` applies that to a batch.
"""

from __future__ import annotations

import os
from fnmatch import fnmatch
from pathlib import Path
from typing import Callable

from unstuck.seams.watchfiles_seam import Change, DefaultFilter


class WatchFilter(DefaultFilter):
    def __init__(self, roots: list[Path], watch: tuple[str, ...], ignore: tuple[str, ...]) -> None:
        super().__init__()
        self.roots = [str(r).rstrip("/") + "/" for r in roots]
        self.watch = watch
        self.ignore = ignore

    def __call__(self, change: Change, path: str) -> bool:
        if not super().__call__(change, path):
            return False
        # Only the part below the watched root counts: APP_DIR's own path must not match an ignore.
        rel = next((path[len(r):] for r in self.roots if path.startswith(r)), path)
        parts = Path(rel).parts
        if any(fnmatch(part, pattern) for part in parts for pattern in self.ignore):
            return False
        if change == Change.added and os.path.isdir(path):
            # Files written into a new directory before inotify watches it raise no event of their own
            # (a checkout creating a package): the directory's creation is the change that counts.
            return True
        return any(fnmatch(parts[-1], pattern) for pattern in self.watch)


def has_watched_file(top: str, watch_filter: Callable[[Change, str], bool]) -> bool:
    """Whether a file the filter passes is anywhere under `top` (not looking into directories it ignores)."""
    for directory, subdirs, files in os.walk(top):
        if any(watch_filter(Change.added, os.path.join(directory, name)) for name in files):
            return True
        subdirs[:] = [d for d in subdirs if watch_filter(Change.added, os.path.join(directory, d))]
    return False


def without_bare_dirs(changes: set[tuple[Change, str]], watch_filter: Callable[[Change, str], bool]) -> set:
    """The batch without the new directories that hold no watched file. Look once inotify watches them:
    a file written into one later raises its own event."""
    return {(change, path) for change, path in changes
            if change != Change.added or not os.path.isdir(path) or has_watched_file(path, watch_filter)}
