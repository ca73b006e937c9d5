"""watchfiles as unstuck uses it, its internals included. Every use of watchfiles goes through here.

watch_stream.py runs watchfiles.watch()'s loop itself (to change the step per call) over the Rust watcher,
which is not public API. Contracts (tested in tests/unit/test_seams.py against the installed watchfiles):
- `RustNotify(paths, debug, force_polling, poll_delay_ms, recursive, ignore_permission_denied)`, a context
  manager, whose `watch(debounce_ms, step_ms, timeout_ms, stop_event)` returns a set of (int, path) once
  something changed, "timeout" when nothing did within timeout_ms, "stop" once `stop_event.is_set()`;
- `stop_event.is_set()` is called after every step once the watcher exists (watcher._Beat takes its first
  call for "watching now");
- `Change(int)` maps those ints; `DefaultFilter()(change, path)` and `DefaultFilter.ignore_dirs`;
- the errors inotify_limits.classify reads: the instances limit is a RuntimeError naming "(os error 24)".
"""

from __future__ import annotations

from watchfiles import Change, DefaultFilter
from watchfiles._rust_notify import RustNotify

__all__ = ["Change", "DefaultFilter", "RustNotify"]
