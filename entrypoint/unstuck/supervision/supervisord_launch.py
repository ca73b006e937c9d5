"""Run supervisord with a 0.1 s main-loop tick instead of its hard-coded 1 s.

supervisord acts on a signal or a child's exit only when its poll returns, and the poll waits up to
1 s when no child writes output: `docker stop` then costs up to 1 s before the SIGTERM is forwarded and
1 s more before the exit is noticed. Capping the poll timeout keeps stops fast; supervisord's behaviour
is otherwise untouched (its TICK events are computed from the clock, not from loop counts).
"""

from __future__ import annotations

from supervisor import poller, supervisord

TICK_S = 0.1


def _cap(poll):
    def capped(self, timeout):
        return poll(self, min(timeout, TICK_S))

    return capped


for _name in ("SelectPoller", "PollPoller", "KQueuePoller"):
    _cls = getattr(poller, _name, None)
    if _cls is not None:
        _cls.poll = _cap(_cls.poll)

if __name__ == "__main__":
    supervisord.main()
