"""Decide between inotify, inotify with a safety poll, and polling from the filesystem types of the watched
directories' mounts.

inotify only sees changes made through this kernel. A directory shared from another machine or VM over 9p
(WSL2's Windows drives), NFS, SMB or a VirtualBox/Parallels/VMware share changes without any event, so
`uvicorn --reload` silently never reloads there: those are polled. Docker Desktop (osxfs, gRPC FUSE,
VirtioFS/fakeowner), OrbStack and Colima (virtiofs) forward the host's edits as inotify events, but some go
missing (deletions under VirtioFS, docker/for-mac#7246; propagation that stops on a large tree,
docker/for-mac#4731): there inotify is used for speed and a slower safety poll (safety_poll.py) catches what
the events miss. Other FUSE filesystems are treated the same way. watchfiles only switches to polling by
environment variable or on WSL itself; this reads /proc/self/mountinfo instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from unstuck.user_files import is_under

# Filesystem types whose changes made on the other side raise no inotify events here.
POLLING_FS = {
    "9p", "drvfs", "v9fs",  # WSL2 Windows drives, VM 9p shares
    "nfs", "nfs4",
    "cifs", "smb3", "smbfs",
    "vboxsf", "prl_fs", "vmhgfs", "fuse.vmhgfs-fuse",  # VirtualBox, Parallels, VMware shares
    "fuse.sshfs", "fuse.rclone",
}
# Filesystem types that carry the other side's changes as inotify events, but maybe not all of them; any
# other "fuse.*" type counts as one of these too.
SOME_EVENTS_FS = {
    "fakeowner", "fuse.grpcfuse", "fuse.osxfs",  # Docker Desktop file sharing (VirtioFS, gRPC FUSE, osxfs)
    "virtiofs",  # Docker Desktop, OrbStack, Colima, Podman machine
}


@dataclass(frozen=True)
class Mount:
    point: str
    fstype: str


@dataclass(frozen=True)
class Decision:
    poll: bool  # poll instead of inotify
    reason: str
    safety: bool = False  # inotify, and a slower poll for the changes events miss


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as octal (\040 ...).
    return field.encode().decode("unicode_escape") if "\\" in field else field


def parse_mountinfo(text: str) -> list[Mount]:
    mounts = []
    for line in text.splitlines():
        fields = line.split()
        if "-" not in fields or len(fields) < 7:
            continue
        sep = fields.index("-")
        if sep + 1 >= len(fields):
            continue
        mounts.append(Mount(_unescape(fields[4]), fields[sep + 1]))
    return mounts


def relevant_mounts(mounts: list[Mount], root: Path) -> list[Mount]:
    """The mount holding `root` itself and every mount below it (the last one listed wins a point)."""
    root_s = str(root)
    holding = [m for m in mounts if is_under(root_s, m.point)]
    by_point: dict[str, Mount] = {}
    if holding:
        top = max(holding, key=lambda m: len(m.point))
        by_point[top.point] = top
    for m in mounts:
        if is_under(m.point, root_s):
            by_point[m.point] = m
    return list(by_point.values())


def decide(roots: list[Path], mountinfo: str, forced: bool | None) -> Decision:
    if forced is True:
        return Decision(True, "UNSTUCK_POLL=1")
    if forced is False:
        return Decision(False, "UNSTUCK_POLL=0")
    listed = parse_mountinfo(mountinfo)
    mounts = [m for root in roots for m in relevant_mounts(listed, root)]
    for m in mounts:
        if m.fstype in POLLING_FS:
            return Decision(True, f"{m.point} is a {m.fstype} mount, whose changes raise no inotify events")
    for m in mounts:
        if m.fstype in SOME_EVENTS_FS or m.fstype.startswith("fuse."):
            return Decision(False, f"{m.point} is a {m.fstype} mount, whose changes may not all raise inotify events",
                            safety=True)
    types = sorted({m.fstype for m in mounts})
    return Decision(False, f"local filesystems ({', '.join(types) or 'unknown'})")


def decide_here(roots: list[Path], forced: bool | None) -> Decision:
    try:
        text = Path("/proc/self/mountinfo").read_text()
    except OSError:
        text = ""
    return decide(roots, text, forced)
