"""When inotify cannot watch everything: which kernel limit was hit, the one line that says how to raise
it, and whether a directory is really watched.

The kernel limits inotify per user, and every container of the same uid on a host counts against the same
limits: `fs.inotify.max_user_instances` (inotify_init fails with EMFILE) and `fs.inotify.max_user_watches`
(inotify_add_watch fails with ENOSPC; one watch per directory, ignored ones such as .venv and node_modules
included, since watchfiles watches the whole tree and filters events afterwards). watchfiles 1.3.0 (Rust
notify 8.0.0) reports both only while it creates its watcher, i.e. when `watchfiles.watch()` starts:

- instances: `WatchfilesRustInternalError` (a RuntimeError)
  "Error creating recommended watcher: Too many open files (os error 24)";
- watches: `OSError` "OS file watch limit reached. about [path] (Error { kind: MaxFilesWatch, ... })".

A directory created later, once no watch is left, is silently not watched (notify drops that error), and
nothing under it ever raises an event. `unwatched()` finds such directories by comparing them with the
kernel's list of this process's watches in /proc/self/fdinfo: no library exposes that list.
"""

from __future__ import annotations

import errno
import os
import re
import resource
from dataclasses import dataclass
from pathlib import Path

# What to raise each limit to: the value most distributions and IDEs recommend for development machines.
SUGGESTED = {"instances": 512, "watches": 524288}
SYSCTL = {"instances": "fs.inotify.max_user_instances", "watches": "fs.inotify.max_user_watches"}
# The same limits as seen from inside a user namespace (lower there than the host's, when set lower).
USER_NS_FILE = {"instances": "/proc/sys/user/max_inotify_instances", "watches": "/proc/sys/user/max_inotify_watches"}

_FDINFO_WATCH = re.compile(r"^inotify wd:\S+ ino:([0-9a-f]+) sdev:([0-9a-f]+)", re.MULTILINE)


class WatchLimitReached(OSError):
    """A new directory got no inotify watch: the watch limit was reached after the watcher started."""


@dataclass(frozen=True)
class Limit:
    kind: str  # "instances" or "watches"
    value: int | None  # the limit in force, when readable

    @property
    def sysctl(self) -> str:
        return SYSCTL[self.kind]

    def too_low_for(self, roots: list[Path]) -> bool:
        """The watch limit in force is below what `roots` need, whatever other processes release: trying
        inotify again would only cost a walk that adds thousands of watches and fails (seconds on 100,000
        files). Counting the directories costs a tenth of that."""
        if self.kind != "watches":
            return False
        value = current_limit("watches")
        return value is not None and value < count_dirs(roots)

    def message(self, roots: list[Path], poll_ms: int, retry_s: float) -> str:
        where = ", ".join(map(str, roots))
        current = f" = {self.value}" if self.value is not None else ""
        if self.kind == "watches":
            what = (f"the inotify watch limit is reached ({self.sysctl}{current}, shared by every process of this "
                    f"user on the host; {where} needs one per directory, .venv and node_modules included: "
                    f"{count_dirs(roots)} directories)")
        else:
            what = (f"the inotify instance limit is reached ({self.sysctl}{current}, shared by every process of "
                    f"this user on the host, one per watching process)")
        setting = f"{self.sysctl}={SUGGESTED[self.kind]}"
        return (f"inotify cannot watch {where}: {what}; polling every {poll_ms} ms instead (more CPU), trying "
                f"inotify again every {retry_s:g} s. To fix it, raise the limit on the Docker host: "
                f"`sudo sysctl -w {setting}` (keep it with a line `{setting}` in /etc/sysctl.d/99-inotify.conf; "
                f"Docker Desktop: `docker run --rm --privileged alpine sysctl -w {setting}`)")


def _read_int(path: str) -> int | None:
    try:
        return int(Path(path).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def current_limit(kind: str) -> int | None:
    """The limit in force: the host's sysctl, or the user namespace's when that is lower."""
    values = [v for v in (_read_int("/proc/sys/" + SYSCTL[kind].replace(".", "/")), _read_int(USER_NS_FILE[kind]))
              if v is not None]
    return min(values) if values else None


def _at_open_file_limit() -> bool:
    """EMFILE also means this process has used up its own descriptors (ulimit -n): no inotify limit then."""
    try:
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        return soft != resource.RLIM_INFINITY and len(os.listdir("/proc/self/fd")) >= soft - 1
    except OSError:
        return False


def classify(exc: BaseException) -> Limit | None:
    """The inotify limit that `exc`, raised by watchfiles (or by `unwatched` below), says was reached."""
    if isinstance(exc, (FileNotFoundError, PermissionError)):
        return None
    text = str(exc)
    if isinstance(exc, WatchLimitReached) or (isinstance(exc, OSError) and "MaxFilesWatch" in text):
        return Limit("watches", current_limit("watches"))
    emfile = f"os error {errno.EMFILE})" in text or (isinstance(exc, OSError) and exc.errno == errno.EMFILE)
    if emfile and not _at_open_file_limit():
        return Limit("instances", current_limit("instances"))
    return None


def count_dirs(roots: list[Path]) -> int:
    return sum(1 + sum(len(subdirs) for _, subdirs, _ in os.walk(root)) for root in roots)


def watched_inodes() -> set[tuple[int, int]] | None:
    """(st_dev, st_ino) of every inode this process's inotify instances watch; None if that cannot be read."""
    found = None
    try:
        fds = os.listdir("/proc/self/fd")
    except OSError:
        return None
    for fd in fds:
        try:
            if os.readlink(f"/proc/self/fd/{fd}") != "anon_inode:inotify":
                continue
            text = Path(f"/proc/self/fdinfo/{fd}").read_text()
        except OSError:
            continue
        found = found if found is not None else set()
        for ino, sdev in _FDINFO_WATCH.findall(text):
            dev = int(sdev, 16)  # the kernel's dev_t: major in the bits above 20, minor below
            found.add((os.makedev(dev >> 20, dev & 0xFFFFF), int(ino, 16)))
    return found


def unwatched(directories: list[str]) -> list[str]:
    """Those of `directories` (that still exist) that no inotify instance of this process watches."""
    watched = watched_inodes()
    if watched is None:
        return []  # cannot tell: assume watched rather than give up inotify for nothing
    missing = []
    for directory in directories:
        try:
            st = os.stat(directory)
        except OSError:
            continue  # deleted meanwhile: nothing to watch
        if (st.st_dev, st.st_ino) not in watched:
            missing.append(directory)
    return missing
