"""What a changed file reads as when its batch arrives, to tell a save already delivered from a new one.

An in-place save is a truncation, then a write. A writer descheduled between the two (a loaded machine) has
its events delivered in two batches; when the first is read after the write, both batches carry the same
save, and the second would restart the reload the first started. A file whose stat stamp (mtime, ctime,
size, inode) and content are both as they were when its last batch was read has not been saved since: the
content makes this safe on a share whose timestamps are coarse (two saves of one size within a second), the
stamp keeps `touch main.py` a reload, as it is with `uvicorn --reload`.
"""

from __future__ import annotations

import hashlib
import os
from stat import S_ISREG

from unstuck.watching.safety_poll import stamp_from

MAX_BYTES = 1 << 20  # larger files are not read: their batches are never taken for a repeat

Fingerprint = tuple[int, int, int, int, bytes]


def fingerprint(path: str, st: os.stat_result, stat_of=os.stat) -> Fingerprint | None:
    """What `path` reads as, `st` being its stat taken before (the batch's own); None when it cannot say (not a
    regular file, too large, unreadable, written while read)."""
    if not S_ISREG(st.st_mode) or st.st_size > MAX_BYTES:
        return None
    try:
        with open(path, "rb") as f:
            digest = hashlib.sha1(f.read(MAX_BYTES + 1), usedforsecurity=False).digest()
        after = stat_of(path)
    except OSError:
        return None
    before = stamp_from(st)
    if before != stamp_from(after):
        return None  # written while it was read
    return (*before, digest)
