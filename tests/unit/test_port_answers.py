"""The port answers in every state: whatever serves it dies, something that answers takes its place (the
generation state machine, driven with test_generations' fake OS)."""

from test_generations import exited, m, ops, ready  # noqa: F401 - the machine and its fake OS (fixtures)
from unstuck.errors.failure import Failure

WRONG_PYTHON = Failure("environment", "PythonVersion", "pyproject.toml requires Python >=3.14; this image runs "
                                                       "3.11.2: rebuild with BASE_IMAGE=python:3.14-slim")


def environment_page(m, ops):
    ops.problem = WRONG_PYTHON
    m.start()
    page = ops.spawned[-1]
    ready(m, page)
    assert page.kind == "responder" and m.current is page
    return page


def test_the_environment_error_page_comes_back_when_its_responder_dies(m, ops):
    page = environment_page(m, ops)
    ops.t += 60  # it served a while: restarted at once
    exited(m, page, code=-9)
    again = ops.spawned[-1]
    assert again is not page and again.kind == "responder" and again.failure is WRONG_PYTHON
    assert m.current is again  # promoted at once: the port says why again, never goes dark
    assert m.snapshot()["environment_error"] == WRONG_PYTHON.message


def test_a_responder_that_keeps_dying_comes_back_after_the_backoff_and_nothing_of_the_app_starts(m, ops):
    page = environment_page(m, ops)
    for _ in range(4):
        exited(m, page, code=1)  # dies at once, again and again
        if ops.spawned[-1] is page:  # backing off: it comes back when the delay is over
            ops.t += m.restart_delay
            m.on_timers()
        page = ops.spawned[-1]
        ready(m, page)
        assert page.kind == "responder" and page.failure is WRONG_PYTHON and m.current is page
    assert all(g.kind == "responder" for g in ops.spawned)  # nothing is imported while the interpreter is wrong
