"""Runs unstuck's Watcher on a directory and reports on stdout, for tests that need a process of its own:
one whose inotify limits are lowered (run it under `unshare --user --map-root-user`: the limits in
/proc/sys/user belong to that user namespace, so the host's stay untouched).

    python watcher_probe.py ROOT [--instances N] [--watches N] [--retry S] [--poll 0|1]

Lines it prints: unstuck's own log lines, and "@@ " + JSON for each batch ({"batch": [[change, path] ...]})
and each state change ({"state": {...}}). Commands on stdin: "limits INSTANCES WATCHES" sets the limits
(the watcher's process is in the namespace), "quit" stops the watcher and exits.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "entrypoint"))

from unstuck.config import DEFAULT_IGNORE, DEFAULT_WATCH  # noqa: E402
from unstuck.logs import setup  # noqa: E402
from unstuck.watching.watch_filter import WatchFilter  # noqa: E402
from unstuck.watching.watcher import Watcher  # noqa: E402

LIMITS = {"instances": "/proc/sys/user/max_inotify_instances", "watches": "/proc/sys/user/max_inotify_watches"}
_out = threading.Lock()


def report(**data) -> None:
    with _out:
        print("@@ " + json.dumps(data), flush=True)


def set_limits(instances: int | None, watches: int | None) -> None:
    for kind, value in (("instances", instances), ("watches", watches)):
        if value is not None:
            Path(LIMITS[kind]).write_text(f"{value}\n")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("root", type=Path)
    parser.add_argument("--instances", type=int)
    parser.add_argument("--watches", type=int)
    parser.add_argument("--retry", type=float, default=60.0, help="seconds between inotify retries")
    parser.add_argument("--poll", choices=("0", "1"), help="UNSTUCK_POLL")
    args = parser.parse_args()
    set_limits(args.instances, args.watches)
    setup("info")
    roots = [args.root]
    forced = None if args.poll is None else args.poll == "1"
    watcher = Watcher(roots, WatchFilter(roots, DEFAULT_WATCH, DEFAULT_IGNORE),
                      lambda changes: report(batch=sorted([c.name, p] for c, p in changes)),
                      force_polling=forced, poll_ms=100, step_ms=20, inotify_retry_s=args.retry,
                      on_state=lambda state: report(state=state))
    watcher.start()
    for line in sys.stdin:
        words = line.split()
        if words[:1] == ["limits"]:
            set_limits(int(words[1]), int(words[2]))
            report(limits=words[1:])
        elif words[:1] == ["quit"]:
            break
    watcher.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
