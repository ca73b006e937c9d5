"""supervisor as unstuck uses it, its internals included. Every use of supervisor goes through here.

Contracts (tested in tests/unit/test_seams.py against the installed supervisor):
- supervisord polls with `supervisor.poller.Poller`, one of SelectPoller/PollPoller/KQueuePoller, whose
  `poll(self, timeout)` is where its main loop waits: cap_poll_timeout shortens that wait;
- `supervisord.main()` runs supervisord with sys.argv;
- `childutils.getRPCInterface(env)` is an XML-RPC proxy on SUPERVISOR_SERVER_URL whose `.supervisor` has
  startProcess, signalProcessGroup, startProcessGroup, reloadConfig, stopProcessGroup, removeProcessGroup
  and addProcessGroup (supervisor.rpcinterface's names);
- the event listener protocol: `childutils.listener.wait(stdin, stdout)` writes READY and returns
  (headers, payload); `listener.ok(stdout)` acknowledges; `childutils.get_headers(line)` parses "k:v k:v".
"""

from __future__ import annotations

import os

from supervisor import childutils, poller

listener = childutils.listener
get_headers = childutils.get_headers

POLLERS = ("SelectPoller", "PollPoller", "KQueuePoller")


def rpc_interface(environ=None):
    """supervisord's XML-RPC interface over the control socket the environment names (supervisord gives its
    children SUPERVISOR_SERVER_URL, and the password in SUPERVISOR_USERNAME/PASSWORD)."""
    return childutils.getRPCInterface(os.environ if environ is None else environ)


def cap_poll_timeout(seconds: float) -> None:
    """Make supervisord's main loop wait at most `seconds` for its poller (it waits up to 1 s otherwise)."""
    for name in POLLERS:
        cls = getattr(poller, name, None)
        if cls is not None and not getattr(cls.poll, "unstuck_capped", False):
            cls.poll = _capped(cls.poll, seconds)


def _capped(poll, seconds: float):
    def capped(self, timeout):
        return poll(self, min(timeout, seconds))

    capped.unstuck_capped = True
    return capped


def run_supervisord() -> None:
    from supervisor import supervisord

    supervisord.main()
