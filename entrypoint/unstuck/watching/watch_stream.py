"""watchfiles.watch(), with a step that is short while the user is editing and long while they are not.

watchfiles yields a batch once no new change came for `step` ms, checking every `step` ms: a save is seen
between one and two steps after it happens, and each check wakes the thread. With 20 ms that is 20-40 ms
of a reload's latency, with 1 ms only 1-2 ms, but the checks cost about 2 % of a core instead of 0.5 %
(measured with RustNotify alone: 20 ms 0.46 %, 4 ms 1.56 %, 1 ms 2.13 %; the wake-up, not the step, is
most of the cost). Here the step is short for a while after each change (edits come in series) and
after the watch starts (a container start is when the first edit is most likely soon), and long again
once the tree has been quiet for that long. watchfiles.watch() fixes the step for the whole generator, so this is
its loop (about twenty lines, over the same RustNotify) with the step chosen per call.
"""

from __future__ import annotations

import time

from unstuck.seams.watchfiles_seam import Change, RustNotify

HOT_STEP_MS = 1
HOT_FOR_S = 300.0


def watch(*paths, watch_filter=None, debounce: int = 1_600, step: int = 50, stop_event=None,
          rust_timeout: int = 5_000, yield_on_timeout: bool = False, raise_interrupt: bool = True,
          force_polling: bool = False, poll_delay_ms: int = 300, recursive: bool = True,
          ignore_permission_denied: bool = False, hot_step: int = HOT_STEP_MS, hot_for: float = HOT_FOR_S,
          clock=time.monotonic, notify=RustNotify):
    """Same arguments and batches as watchfiles.watch(); `step` while idle, `hot_step` for `hot_for` seconds
    after the start and after each delivered batch."""
    hot_until = clock() + hot_for
    with notify([str(p) for p in paths], False, force_polling, poll_delay_ms, recursive,
                ignore_permission_denied) as watcher:
        while True:
            current = hot_step if clock() < hot_until else step
            raw = watcher.watch(debounce, current, rust_timeout, stop_event)
            if raw == "timeout":
                if yield_on_timeout:
                    yield set()
            elif raw == "signal":
                if raise_interrupt:
                    raise KeyboardInterrupt
                return
            elif raw == "stop":
                return
            else:
                changes = {(Change(change), path) for change, path in raw
                           if watch_filter is None or watch_filter(Change(change), path)}
                if changes:
                    hot_until = clock() + hot_for
                    yield changes
