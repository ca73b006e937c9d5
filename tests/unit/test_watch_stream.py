"""The watch stream's step: short while edits come in, long once the tree has been quiet."""

from watchfiles import Change

from unstuck.watching import watch_stream


class FakeNotify:
    """RustNotify's interface: each watch() call returns the next scripted answer and records its step."""

    def __init__(self, answers):
        self.answers = list(answers)
        self.steps = []

    def __call__(self, *args):
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def watch(self, debounce, step, timeout, stop_event):
        self.steps.append(step)
        return self.answers.pop(0) if self.answers else "stop"


def test_the_step_is_short_after_the_start_and_after_a_change_and_long_again_after_a_quiet_while():
    now = [0.0]
    notify = FakeNotify(["timeout", "timeout", {(2, "/w/app/main.py")}, "timeout", "timeout", "timeout"])
    stream = watch_stream.watch("/w", step=20, hot_step=4, hot_for=60, yield_on_timeout=True,
                                clock=lambda: now[0], notify=notify)
    assert next(stream) == set()  # just started: the short step
    now[0] = 61.0
    assert next(stream) == set()  # quiet since the start for longer than hot_for: the long step
    assert next(stream) == {(Change.modified, "/w/app/main.py")}
    now[0] = 91.0
    next(stream)  # 30 s after the change: short again
    now[0] = 122.0
    next(stream)  # quiet for longer than hot_for: long again
    assert notify.steps == [4, 20, 20, 4, 20]


def test_filtered_out_changes_do_not_make_it_hot():
    now = [100.0]
    notify = FakeNotify(["timeout", {(2, "/w/server.log")}, "timeout"])
    stream = watch_stream.watch("/w", step=20, hot_step=4, hot_for=60, yield_on_timeout=True, notify=notify,
                                clock=lambda: now[0], watch_filter=lambda change, path: path.endswith(".py"))
    assert next(stream) == set()  # hot from the start
    now[0] = 161.0
    assert next(stream) == set()
    assert notify.steps == [4, 20, 20]
