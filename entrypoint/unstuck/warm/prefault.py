"""Copy the pages a fork shares with the warm process before a request needs them, not during it.

A fork shares every page with its parent until one of them writes to it; the first write to each (a
reference count, a GC header, an allocator's free list) copies it, a page fault at a time. A spare or an
app layer does this while it waits, so that the reload's import and first request do not. Measured on the
bench's heavy app (pandas, SQLAlchemy, FastAPI; 80 MB of inherited heap), in a fork of a warm process:
import 36 ms and first request 8.4 ms untouched; 22 and 6.2 ms after a full garbage collection (which
writes every tracked object's header: most, not all, of those pages), taking 140 ms; 11 and 3.4 ms after
asking the kernel to copy every inherited page at once (madvise MADV_POPULATE_WRITE, Linux 5.14+),
taking 75 ms. Only pages the warm process had in memory are copied: a reserved, never touched range
stays unallocated. The cost is memory: each waiting fork holds its own copy of those pages.
"""

from __future__ import annotations

import ctypes
import gc
import os
import platform

MADV_POPULATE_WRITE = 23  # asm-generic/mman-common.h, Linux 5.14
# Machines whose kernel takes madvise's advice numbers from asm-generic/mman-common.h (alpha, mips, parisc
# and xtensa have headers of their own, not checked here: there the garbage collection does the copying).
GENERIC_MMAN = {"x86_64", "i686", "aarch64", "arm64", "armv7l", "armv8l", "riscv64"}
_PRESENT, _EXCLUSIVE = 1 << 63, 1 << 56  # /proc/<pid>/pagemap entry bits (Documentation/admin-guide/mm/pagemap.rst)
_NOT_HEAP = ("[stack", "[vvar", "[vdso", "[vsyscall")


def copy_inherited_pages(within: list[tuple[int, int]] | None = None) -> None:
    """In a freshly forked process that will wait for work: copy its inherited pages now (a garbage
    collection, which touches most of them, where the kernel cannot do it); with `within` (address runs, as
    written_runs gives them), only those of its pages (an app layer's copy: the pages its workers write)."""
    try:
        if _populate_shared_pages(within):
            return
    except (OSError, ValueError, AttributeError):
        pass
    if within is None:
        gc.collect()


def written_runs() -> list[tuple[int, int]]:
    """The address runs [start, end) of the private writable pages this process holds alone (present, mapped
    exclusively): in a worker made from an app layer whose copy shares the rest, the pages its import and startup
    wrote, and those it allocated. [] where the kernel's page map cannot be read."""
    try:
        return list(_page_runs(exclusive=True))
    except (OSError, ValueError):
        return []


def within_runs(runs: list[tuple[int, int]], within: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The parts of `runs` inside `within` (both sorted, not overlapping)."""
    out: list[tuple[int, int]] = []
    index = 0
    for start, end in runs:
        while index < len(within) and within[index][1] <= start:
            index += 1
        scan = index
        while scan < len(within) and within[scan][0] < end:
            low, high = max(start, within[scan][0]), min(end, within[scan][1])
            if low < high:
                out.append((low, high))
            scan += 1
    return out


def merged_runs(*lists: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The union of address runs, sorted, touching runs joined."""
    out: list[tuple[int, int]] = []
    for start, end in sorted(run for runs in lists for run in runs):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def _page_runs(exclusive: bool):
    """The address runs of present private writable pages (heap, not stack) this process shares with another
    (`exclusive` False) or holds alone (True), read from /proc/self/pagemap."""
    page = os.sysconf("SC_PAGE_SIZE")
    want = _PRESENT | _EXCLUSIVE if exclusive else _PRESENT
    with open("/proc/self/maps") as maps, open("/proc/self/pagemap", "rb", buffering=0) as pagemap:
        for line in maps:
            fields = line.split()
            perms, path = fields[1], fields[5] if len(fields) > 5 else ""
            if not (perms.startswith("rw") and perms[3] == "p") or path.startswith(_NOT_HEAP):
                continue
            low, high = (int(end, 16) for end in fields[0].split("-"))
            count = (high - low) // page
            pagemap.seek(low // page * 8)
            entries = memoryview(pagemap.read(count * 8)).cast("Q")
            start = None
            for index in range(count + 1):
                wanted = index < count and entries[index] & (_PRESENT | _EXCLUSIVE) == want
                if wanted and start is None:
                    start = index
                elif not wanted and start is not None:
                    yield low + start * page, low + index * page
                    start = None


def _populate_shared_pages(within: list[tuple[int, int]] | None = None) -> bool:
    """madvise(MADV_POPULATE_WRITE) each run of private writable pages this process still shares with its
    parent (present, not exclusively mapped), or only their parts `within`; False if the kernel does not
    support it (or its advice numbers are not known here)."""
    if platform.machine() not in GENERIC_MMAN:
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    madvise = libc.madvise
    madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    runs = list(_page_runs(exclusive=False))
    for start, end in runs if within is None else within_runs(runs, within):
        if madvise(start, end - start, MADV_POPULATE_WRITE) != 0:
            if ctypes.get_errno() == 22:  # EINVAL: a kernel before 5.14
                return False
    return True
