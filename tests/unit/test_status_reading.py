"""How the integration tests read `unstuck status --json` (tests/containers.py): an exec that comes back
without output (Docker loses a short process's output now and then: moby/moby#27289; CI saw it once at
exit 0) is asked again, and a wait never checks counters on a reading that has none. CI was red once on
that: a KeyError on 'counters' in the middle of a wait that would have passed."""

import json
from pathlib import Path

import pytest
from docker.models.containers import ExecResult

from containers import Served

SERVING = {"state": "serving", "counters": {"installs": 2}}


class Container:
    """Answers each exec with the next of `outputs` (exit 0), the last one again when they run out."""

    def __init__(self, *outputs: bytes):
        self.outputs = list(outputs)
        self.asked = 0

    def exec_run(self, cmd, user=""):
        assert cmd == ["unstuck", "status", "--json"], cmd
        self.asked += 1
        out = self.outputs.pop(0) if len(self.outputs) > 1 else self.outputs[0]
        return ExecResult(0, out)


def served(container: Container) -> Served:
    return Served(container=container, port=0, app_dir=Path("/nonexistent"))


def test_an_answer_without_output_is_asked_again():
    container = Container(b"", json.dumps(SERVING).encode())
    assert served(container).status() == SERVING
    assert container.asked == 2


def test_a_wait_on_counters_goes_on_past_an_unreadable_answer():
    # Two answers lost in a row (more than one status read asks), then the server's: the wait returns it.
    container = Container(b"", b"", b"", b"", json.dumps(SERVING).encode())
    seen = served(container).wait_status("installed", lambda s: s["counters"]["installs"] > 1, timeout=30)
    assert seen == SERVING


def test_a_server_that_never_answers_fails_the_wait_saying_so():
    with pytest.raises(pytest.fail.Exception, match="not within 0.3 s; last:.*no output"):
        served(Container(b"")).wait_status("installed", lambda s: s["counters"]["installs"] > 1, timeout=0.3)
