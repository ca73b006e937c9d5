import signal

from watchfiles import Change

from unstuck.reloader import backoff_delay, describe_changes, describe_exit


def test_backoff_is_immediate_then_doubles_up_to_the_cap():
    assert [backoff_delay(n, 10) for n in range(1, 9)] == [0, 1, 2, 4, 8, 10, 10, 10]
    assert [backoff_delay(n, 2.5) for n in range(1, 6)] == [0, 1, 2, 2.5, 2.5]


def test_exit_descriptions():
    assert describe_exit(1) == "exited with code 1"
    assert describe_exit(-signal.SIGKILL) == "was killed by SIGKILL"
    assert describe_exit(-signal.SIGSEGV) == "was killed by SIGSEGV"


def test_change_descriptions_are_relative_and_short(tmp_path):
    changes = {(Change.modified, f"{tmp_path}/app/main.py")}
    assert describe_changes(changes, tmp_path) == "app/main.py modified"
    many = {(Change.added, f"{tmp_path}/app/m{i}.py") for i in range(5)}
    assert describe_changes(many, tmp_path) == "app/m0.py added, app/m1.py added, app/m2.py added and 2 more"
