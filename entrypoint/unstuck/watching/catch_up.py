"""What changed under the watched roots while nothing watched them (a file watcher being restarted).

A snapshot of every file's mtime would tell exactly, but it has to be kept up to date all the time and
costs memory on every tree (about 20 MB for 100,000 files) for a case that is rare. Instead this compares
each file's and directory's ctime with the moment changes were last delivered: ctime cannot be set from
user space, so it also catches files copied with their old mtime (`cp -p`, `rsync -a`, `tar x`), and a
directory's ctime moves when an entry in it is added, removed or renamed, which is how deletions show. It
costs one walk with one stat per file, only when a watcher restarts (0.8 s of CPU on a tree of 100,000 files
of which 70,000 are outside .venv and node_modules, which are not walked; measured by `make bench`).
What it cannot tell is which file a directory lost: such a directory is reported as changed, and a
directory may also have changed only because an ignored file was written into it, which costs one
extra reload after a restart, never a missed one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from unstuck.seams.watchfiles_seam import Change

WatchFilter = Callable[[Change, str], bool]


def _changed(st: os.stat_result, since: float) -> bool:
    return max(st.st_ctime, st.st_mtime) > since


def changes_since(roots: list[Path], watch_filter: WatchFilter, since: float) -> set[tuple[Change, str]]:
    """Files passing `watch_filter`, and directories it does not ignore, changed (ctime or mtime) after `since`.

    A directory is reported as modified: an entry in it was added, removed or renamed.
    """
    changes: set[tuple[Change, str]] = set()
    for root in roots:
        try:
            if _changed(os.stat(root), since):
                changes.add((Change.modified, str(root)))
        except OSError:
            continue
    stack = [str(root) for root in roots]
    while stack:
        try:
            with os.scandir(stack.pop()) as entries:
                for entry in entries:
                    try:
                        is_dir = entry.is_dir(follow_symlinks=False)
                        st = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue  # vanished meanwhile
                    if is_dir:
                        # Change.added on a directory asks the filter only whether it is ignored (WatchFilter).
                        if watch_filter(Change.added, entry.path):
                            stack.append(entry.path)
                            if _changed(st, since):
                                changes.add((Change.modified, entry.path))
                    elif _changed(st, since) and watch_filter(Change.modified, entry.path):
                        changes.add((Change.modified, entry.path))
        except OSError:
            continue  # vanished or unreadable
    return changes
