"""A spare copies the pages it shares with the warm process while it waits (prefault.py): on this machine's
kernel, in a real fork, every page the parent had in memory becomes the child's own, and memory the parent
only reserved stays unallocated."""

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


def test_a_fork_owns_the_pages_it_inherited_and_nothing_more():
    used = bytearray(b"x" * (64 * MB))  # in memory in the parent
    reserved = mmap.mmap(-1, 512 * MB, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)  # reserved, never touched
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            before = rollup()
            prefault.copy_inherited_pages()
            after = rollup()
            os.write(write_fd, b"%d %d" % (after["Private_Dirty"] - before["Private_Dirty"], after["Rss"] - before["Rss"]))
        finally:
            os._exit(0)
    os.close(write_fd)
    os.waitpid(pid, 0)
    owned, grown = map(int, os.read(read_fd, 100).split())
    os.close(read_fd)
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
