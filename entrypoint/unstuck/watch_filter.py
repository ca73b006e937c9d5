"""Which changed paths trigger a reload: watchfiles' DefaultFilter, narrowed to patterns the user edits.

DefaultFilter already skips .git, .venv, __pycache__, node_modules and common editor files; it does not
skip `venv`, logs or swap files of every editor, and it passes every file type, so log files and data
written by the app would reload it forever. This adds an include list and name-based excludes.
"""

from __future__ import annotations

import os
from fnmatch import fnmatch
from pathlib import Path

from watchfiles import Change, DefaultFilter


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
