"""Run supervisord with a 0.1 s main-loop tick instead of its hard-coded 1 s.

supervisord acts on a signal or a child's exit only when its poll returns, and the poll waits up to
1 s when no child writes output: `docker stop` then costs up to 1 s before the SIGTERM is forwarded and
1 s more before the exit is noticed. Capping the poll timeout keeps stops fast; supervisord's behaviour
is otherwise untouched (its TICK events are computed from the clock, not from loop counts).
"""

from __future__ import annotations

from unstuck.seams import supervisor_seam

TICK_S = 0.1

supervisor_seam.cap_poll_timeout(TICK_S)

if __name__ == "__main__":
    supervisor_seam.run_supervisord()
