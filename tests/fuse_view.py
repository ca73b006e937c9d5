"""A FUSE view of a directory that behaves like Docker Desktop's file sharing, on any Linux with FUSE.

`bindfs -o allow_other,subtype=grpcfuse SRC VIEW` shows SRC at VIEW as a `fuse.grpcfuse` mount, the type
Docker Desktop's gRPC FUSE shares have in /proc/self/mountinfo. Bind-mounted into a container, a write
through VIEW raises inotify events there (as Docker Desktop forwards the host's edits), and a write to SRC
beneath it raises none (as an event the share dropped, or a 9p/NFS share).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from contextlib import contextmanager
from pathlib import Path


# The sample app plus a name imported from a module that can be deleted: /extra says "none" once reloaded.
EXTRA_ROUTE = '''
try:
    from app.extra import NAME
except ImportError:
    NAME = "none"


@app.get("/extra")
def extra() -> dict:
    return {"extra": NAME}
'''


def sample_with_extra_module(dst: Path) -> str:
    """The sample app at `dst` with EXTRA_ROUTE and app/extra.py (NAME = "extra module"); its main.py text."""
    from containers import readable_copy
    from repo import REPO

    readable_copy(REPO / "app", dst)
    main = (dst / "main.py").read_text() + EXTRA_ROUTE
    (dst / "main.py").write_text(main)
    (dst / "extra.py").write_text('NAME = "extra module"\n')
    (dst / "extra.py").chmod(0o644)
    return main


class Unavailable(RuntimeError):
    """No FUSE view can be made here; str() says why and what to install."""


@contextmanager
def fuse_view(src: Path, view: Path):
    if shutil.which("bindfs") is None:
        raise Unavailable("bindfs is not installed (apt-get install -y bindfs fuse3; .ci/run installs them)")
    if not os.path.exists("/dev/fuse"):
        raise Unavailable("/dev/fuse is missing: FUSE is not available on this machine or in this container")
    view.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(["bindfs", "-o", "allow_other,subtype=grpcfuse", str(src), str(view)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise Unavailable(f"bindfs could not mount a FUSE view: {result.stderr.strip() or result.returncode}")
    try:
        yield view
    finally:
        unmount = ["fusermount3", "-u"] if shutil.which("fusermount3") else ["fusermount", "-u"]
        if subprocess.run([*unmount, str(view)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(view)], capture_output=True)
