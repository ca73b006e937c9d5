"""A spare copies the pages it shares with the warm process while it waits (prefault.py): on this machine's
kernel, in a real fork, every page the parent had in memory becomes the child's own, and memory the parent
only reserved stays unallocated."""

import ctypes
import mmap
import os

from unstuck.warm import prefault

MB = 1 << 20


def rollup() -> dict[str, int]:
    fields = {}
    for line in open("/proc/self/smaps_rollup").read().splitlines()[1:]:
        name, value = line.split(":", 1)
        fields[name] = int(value.split()[0]) * 1024
    return fields


def in_a_fork(child) -> list[int]:
    """The numbers `child()` returns, run in a fork of this process (which then exits)."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.write(write_fd, " ".join(map(str, child())).encode())
        finally:
            os._exit(0)
    os.close(write_fd)
    os.waitpid(pid, 0)
    said = os.read(read_fd, 100).split()
    os.close(read_fd)
    return [int(number) for number in said]


def test_a_fork_owns_the_pages_it_inherited_and_nothing_more():
    used = bytearray(b"x" * (64 * MB))  # in memory in the parent
    reserved = mmap.mmap(-1, 512 * MB, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)  # reserved, never touched

    def child() -> list[int]:
        before = rollup()
        prefault.copy_inherited_pages()
        after = rollup()
        return [after["Private_Dirty"] - before["Private_Dirty"], after["Rss"] - before["Rss"]]

    owned, grown = in_a_fork(child)
    assert owned >= 64 * MB  # the used buffer (and the rest of the heap) is now the child's own copy
    assert grown < 256 * MB  # the reserved range was not filled in
    assert used[-1:] == b"x" and len(reserved) == 512 * MB


def test_on_a_machine_whose_advice_numbers_are_not_known_it_never_calls_madvise_and_collects_instead(monkeypatch):
    monkeypatch.setattr(prefault.platform, "machine", lambda: "mips64")
    monkeypatch.setattr(prefault.ctypes, "CDLL", lambda *a, **k: (_ for _ in ()).throw(AssertionError("libc used")))
    collected = []
    monkeypatch.setattr(prefault.gc, "collect", lambda: collected.append(1))
    prefault.copy_inherited_pages()
    assert collected == [1]


def test_a_fork_finds_the_pages_it_wrote_and_copies_only_the_pages_it_is_told():
    """An app layer's chain (layer_successor.py): a worker finds the pages it wrote (those it holds alone, its layer
    having copied none), and a layer copies only the runs its chain's workers wrote."""
    used = bytearray(b"x" * (64 * MB))  # in memory in the parent, shared with the child
    base = ctypes.addressof((ctypes.c_char * len(used)).from_buffer(used))
    page = os.sysconf("SC_PAGE_SIZE")
    first = (base + page - 1) // page * page  # the buffer's first whole page

    def child() -> list[int]:
        for offset in range(first - base, first - base + 8 * MB, page):  # 8 MB written
            used[offset] = 0x79
        written = prefault.written_runs()
        inside = sum(min(end, first + 64 * MB - page) - max(start, first) for start, end in written
                     if start < first + 64 * MB - page and end > first)
        before = rollup()
        prefault.copy_inherited_pages(within=[(first + 16 * MB, first + 32 * MB)])  # 16 MB of the unwritten
        after = rollup()
        return [inside, after["Private_Dirty"] - before["Private_Dirty"]]

    inside, copied = in_a_fork(child)
    assert inside == 8 * MB  # of the shared buffer, exactly the pages written
    assert 16 * MB <= copied < 24 * MB  # the 16 MB asked for (and a few pages of the heap), not the 56 MB unwritten
    assert used[first - base] == ord("x")  # the parent's pages are its own still


def test_runs_are_cut_to_the_runs_asked_for_and_joined():
    assert prefault.within_runs([(0, 10), (20, 30), (40, 50)], [(5, 25), (45, 100)]) == [(5, 10), (20, 25), (45, 50)]
    assert prefault.within_runs([(0, 10)], []) == []
    assert prefault.merged_runs([(0, 10), (20, 30)], [(10, 15), (25, 40), (50, 60)]) == [(0, 15), (20, 40), (50, 60)]
