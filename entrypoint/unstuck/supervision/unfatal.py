"""supervisord event listener: a program that reached FATAL is started again, forever.

supervisord has no unlimited startretries (Supervisor/supervisor #1310, #487); after a burst of fast
exits the server would sit in FATAL with the port dark. The listener protocol is supervisor.childutils';
stdout is that protocol, so messages go to stderr.
"""

from __future__ import annotations

import signal
import sys
import time
import xmlrpc.client

from unstuck.seams import supervisor_seam

RESTART_DELAY_S = 2.0


def main() -> int:
    # supervisord stops us with SIGTERM on shutdown: that is a clean exit, not a failure.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    rpc = supervisor_seam.rpc_interface()
    while True:
        headers, payload = supervisor_seam.listener.wait(sys.stdin, sys.stdout)
        if headers["eventname"] == "PROCESS_STATE_FATAL":
            name = supervisor_seam.get_headers(payload.split("\n", 1)[0]).get("processname", "")
            group = supervisor_seam.get_headers(payload.split("\n", 1)[0]).get("groupname", name)
            print(f"INFO:     [unstuck] {name} is FATAL; starting it again in {RESTART_DELAY_S:g} s", file=sys.stderr,
                  flush=True)
            time.sleep(RESTART_DELAY_S)
            try:
                rpc.supervisor.startProcess(f"{group}:{name}", False)
            except (xmlrpc.client.Fault, OSError) as exc:  # e.g. SHUTDOWN_STATE while stopping
                print(f"WARNING:  [unstuck] could not restart {name}: {exc}", file=sys.stderr, flush=True)
        supervisor_seam.listener.ok(sys.stdout)
