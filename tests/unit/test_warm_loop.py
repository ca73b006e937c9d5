"""The warm process's loop contains a request whose handling fails (issue 18 goal 6, issue 21 goal 4): no process
is forked here, the loop's state is set by hand the way supervisor's tests set DummyOptions."""

import collections

from unstuck import wire
from unstuck.warm.warm_process import WarmLoop


def a_loop():
    loop = WarmLoop.__new__(WarmLoop)  # no selector, signals or children: only what handle() reaches
    loop.answered, loop.layer, loop.spare_due, loop.handed = collections.deque(maxlen=8), None, None, []
    loop.hand_out_fork = lambda request, fds: loop.handed.append(request.id)  # a plain fork, recorded
    return loop


def boom(self, request, fds):
    raise KeyError("mealie.routes")  # as a namespace package once raised in app_layer (issue 18)


def test_a_request_whose_handling_raises_is_said_once_and_a_fork_request_still_gets_a_plain_fork(monkeypatch,
                                                                                                  capsys):
    for kind in (wire.Fork, wire.Preload):
        monkeypatch.setitem(WarmLoop.HANDLERS, kind, boom)
    loop = a_loop()
    loop.handle(wire.Fork(7, None, [["modified", "/workspace/app/routes.py"]]), [])
    loop.handle(wire.Preload(), [])
    said = capsys.readouterr().err
    assert said.count("unstuck: the warm process failed to handle fork; going on without its spare and app "
                      "layer for it") == 1
    assert said.count("failed to handle preload") == 1 and said.count("KeyError: 'mealie.routes'") == 2
    assert loop.handed == [7]  # the reload still gets its generation
    assert loop.spare_due is not None  # and the loop goes on: the next spare is due


def test_a_fork_request_answered_before_its_handling_raised_is_not_forked_twice(monkeypatch, capsys):
    def answers_then_raises(self, request, fds):
        self.answered.append(request.id)
        raise OSError("the control socket is full")

    monkeypatch.setitem(WarmLoop.HANDLERS, wire.Fork, answers_then_raises)
    loop = a_loop()
    loop.handle(wire.Fork(8, None, None), [])
    assert loop.handed == [] and "failed to handle fork" in capsys.readouterr().err
