"""Cut text to a size measured the way it travels: as JSON with ASCII escapes.

A Failure crosses a pipe, a command line and one 64 KB SOCK_SEQPACKET message (forkserver) as
`json.dumps(...)` output, where "é" takes 6 bytes and an emoji 12. Capping characters would let a line of
CJK text or emoji blow the budget six- or twelve-fold, so every cap here is on the encoded size.
"""

from __future__ import annotations

import json

ELLIPSIS = "…"


def encoded_size(text: str) -> int:
    """Bytes `text` takes inside a JSON document (without its quotes)."""
    return len(json.dumps(text)) - 2


def _longest_prefix(text: str, budget: int) -> str:
    # Encoded size grows with the prefix: binary search on its length. No prefix longer than `budget`
    # characters can fit (each character takes at least one byte), which bounds the work for huge text.
    lo, hi = 0, min(len(text), max(budget, 0))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if encoded_size(text[:mid]) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return text[:lo]


def _longest_suffix(text: str, budget: int) -> str:
    return _longest_prefix(text[::-1], budget)[::-1]


def clip(text: str | None, limit: int, keep: str = "head") -> str | None:
    """`text` with at most `limit` encoded bytes, "…" marking the cut. keep="head" keeps the start
    (a source line, a message), "tail" the end (a path: the file name matters most)."""
    if text is None or encoded_size(text) <= limit:
        return text
    budget = limit - encoded_size(ELLIPSIS)
    if keep == "tail":
        return ELLIPSIS + _longest_suffix(text, budget)
    return _longest_prefix(text, budget) + ELLIPSIS


def clip_middle(text: str | None, limit: int) -> str | None:
    """`text` with at most `limit` encoded bytes, keeping its first quarter and last three quarters: a
    traceback's end (the exception) matters most, its start says where it began."""
    if text is None or encoded_size(text) <= limit:
        return text
    marker = "\n… (cut: too long to show) …\n"
    budget = limit - encoded_size(marker)
    head = _longest_prefix(text, budget // 4)
    tail = _longest_suffix(text, budget - encoded_size(head))
    return head + marker + tail
