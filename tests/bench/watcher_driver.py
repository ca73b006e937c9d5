"""Runs unstuck's Watcher on /workspace inside a bench container and reports what it costs (`make bench`,
`--only watcher`): the time until it watches, the process's RSS, its idle CPU, and a timestamp for each
batch so that the host can time its saves. Output: "@@ " + JSON lines, and unstuck's own log lines.

    python watcher_driver.py [--poll 0|1] [--watches N] [--idle S]

--watches N lowers the inotify watch limit first; run it under `unshare --user --map-root-user` (in a
container started with seccomp and system paths unconfined), where that limit belongs to the namespace.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path("/workspace")


def say(**data) -> None:
    print("@@ " + json.dumps(data), flush=True)


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_s() -> float:
    times = os.times()  # every thread of the process: watchfiles' Rust threads too
    return times.user + times.system


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--poll", choices=("0", "1"))
    parser.add_argument("--watches", type=int)
    parser.add_argument("--idle", type=float, default=10.0)
    args = parser.parse_args()
    if args.watches is not None:
        Path("/proc/sys/user/max_inotify_watches").write_text(f"{args.watches}\n")

    from unstuck.watching import catch_up
    from unstuck.config import DEFAULT_IGNORE, DEFAULT_WATCH
    from unstuck.logs import setup
    from unstuck.watching.watch_filter import WatchFilter
    from unstuck.watching.watcher import Watcher

    setup("info")
    before = rss_mb()
    watcher = Watcher([ROOT], WatchFilter([ROOT], DEFAULT_WATCH, DEFAULT_IGNORE),
                      lambda changes: say(batch=time.time(), paths=sorted(p for _, p in changes)),
                      force_polling=None if args.poll is None else args.poll == "1", poll_ms=500, step_ms=20)
    started = time.monotonic()
    watcher.start()
    while not watcher.state()["watching"]:
        if time.monotonic() - started > 300:
            say(error="not watching after 300 s", state=watcher.state())
            return 1
        time.sleep(0.005)
    start_s = time.monotonic() - started
    time.sleep(3)  # the first polls, and whatever the start left to settle
    cpu0, t0 = cpu_s(), time.monotonic()
    time.sleep(args.idle)
    idle = (cpu_s() - cpu0) / (time.monotonic() - t0)
    t = time.monotonic()
    catch_up.changes_since([ROOT], watcher.watch_filter, time.time())  # what a restart of the watcher walks
    catch_up_s = time.monotonic() - t
    retry_s = None
    if watcher.state()["mode"] == "polling" and watcher._limit is not None:
        t = time.monotonic()
        watcher._inotify_works()  # what each retry of inotify costs while polling because of a limit
        retry_s = time.monotonic() - t
    say(ready=True, mode=watcher.state()["mode"], reason=watcher.state()["reason"], start_s=start_s,
        rss_mb=rss_mb(), rss_before_mb=before, idle_cpu=idle, retry_s=retry_s, catch_up_s=catch_up_s)
    for line in sys.stdin:  # the host saves files now; EOF or "quit" ends it
        if line.strip() == "quit":
            break
    watcher.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
