"""Decide between inotify and polling from the filesystem types of the watched directories' mounts.

inotify only sees changes made through this kernel. A directory shared from another machine or VM
(Docker Desktop's file sharing, WSL2's Windows drives, VirtualBox/Parallels/VMware shares, NFS, SMB)
changes without any event, so `uvicorn --reload` silently never reloads there. watchfiles only switches
to polling by environment variable or on WSL itself; this reads /proc/self/mountinfo instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# Filesystem types whose changes made on the other side raise no inotify events here.
POLLING_FS = {
    "9p", "drvfs", "v9fs",  # WSL2 Windows drives, VM 9p shares
    "nfs", "nfs4",
    "cifs", "smb3", "smbfs",
    "vboxsf", "prl_fs", "vmhgfs", "fuse.vmhgfs-fuse",  # VirtualBox, Parallels, VMware shares
    "fakeowner", "fuse.grpcfuse", "fuse.osxfs", "virtiofs",  # Docker Desktop file sharing
    "fuse.sshfs", "fuse.rclone",
}


@dataclass(frozen=True)
class Mount:
    point: str
    fstype: str


@dataclass(frozen=True)
class Decision:
    poll: bool
    reason: str


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


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def relevant_mounts(mounts: list[Mount], root: Path) -> list[Mount]:
    """The mount holding `root` itself and every mount below it (the last one listed wins a point)."""
    root_s = str(root)
    holding = [m for m in mounts if _within(root_s, m.point)]
    by_point: dict[str, Mount] = {}
    if holding:
        top = max(holding, key=lambda m: len(m.point))
        by_point[top.point] = top
    for m in mounts:
        if _within(m.point, root_s):
            by_point[m.point] = m
    return list(by_point.values())


def decide(roots: list[Path], mountinfo: str, forced: bool | None) -> Decision:
    if forced is True:
        return Decision(True, "UNSTUCK_POLL=1")
    if forced is False:
        return Decision(False, "UNSTUCK_POLL=0")
    mounts = parse_mountinfo(mountinfo)
    for root in roots:
        for m in relevant_mounts(mounts, root):
            if m.fstype in POLLING_FS or m.fstype.startswith("fuse."):
                return Decision(True, f"{m.point} is a {m.fstype} mount, whose changes raise no inotify events")
    types = sorted({m.fstype for root in roots for m in relevant_mounts(mounts, root)})
    return Decision(False, f"local filesystems ({', '.join(types) or 'unknown'})")


def decide_here(roots: list[Path], forced: bool | None) -> Decision:
    try:
        text = Path("/proc/self/mountinfo").read_text()
    except OSError:
        text = ""
    return decide(roots, text, forced)
