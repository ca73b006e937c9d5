"""Which inotify limit an exception from watchfiles 1.3.0 means (the texts below are the ones it raises, seen
in tests/host/test_watcher_real.py), and the line that tells how to raise it."""

import pytest

from unstuck.watching.inotify_limits import Limit, WatchLimitReached, classify, unwatched

# What watchfiles 1.3.0 (notify 8.0.0) raises when the kernel says EMFILE / ENOSPC, and for other troubles.
EMFILE = RuntimeError("Error creating recommended watcher: Too many open files (os error 24)")
ENOSPC = OSError('OS file watch limit reached. about ["/w/pkg"] (Error { kind: MaxFilesWatch, paths: ["/w/pkg"] })')
MISSING = FileNotFoundError("No such file or directory (os error 2) about [\"/w\"]")
DENIED = PermissionError('Permission denied (os error 13) about ["/w/pgdata"]')
UNDERLYING = RuntimeError("error in underlying watcher: IO error for operation on /w/x: Input/output error (os error 5)")


def test_the_instance_limit():
    assert classify(EMFILE).kind == "instances"


def test_the_watch_limit_at_start_and_later():
    assert classify(ENOSPC).kind == "watches"
    assert classify(WatchLimitReached("no inotify watch could be added for /w/new")).kind == "watches"


@pytest.mark.parametrize("exc", [MISSING, DENIED, UNDERLYING, ValueError("os error 24")])
def test_other_troubles_are_no_limit(exc):
    assert classify(exc) is None


def test_the_message_names_the_sysctl_the_value_a_command_and_the_directories(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    line = Limit("watches", 8192).message([tmp_path], 500, 60)
    assert "\n" not in line
    assert "fs.inotify.max_user_watches = 8192" in line and "3 directories" in line
    assert "`sudo sysctl -w fs.inotify.max_user_watches=524288`" in line and "/etc/sysctl.d/" in line
    assert "polling every 500 ms" in line and "again every 60 s" in line


def test_unwatched_names_the_directories_no_inotify_watch_covers(tmp_path):
    import threading

    from watchfiles import watch

    watched, other = tmp_path / "watched", tmp_path / "other"
    (watched / "sub").mkdir(parents=True)
    other.mkdir()
    seen = []

    class OnWatching:
        """watchfiles calls is_set() once its watcher exists: look at the kernel's list then, and stop."""

        @staticmethod
        def is_set():
            seen.append(unwatched([str(watched), str(watched / "sub"), str(other), str(tmp_path / "gone")]))
            return True

    for _ in watch(watched, stop_event=OnWatching(), step=1, force_polling=False):
        pass
    assert seen == [[str(other)]]  # a directory that is gone needs no watch



def test_a_watch_limit_below_the_directory_count_is_too_low_whatever_others_release(tmp_path, monkeypatch):
    from unstuck.watching import inotify_limits

    (tmp_path / "a" / "b").mkdir(parents=True)  # 3 directories
    monkeypatch.setattr(inotify_limits, "current_limit", lambda kind: 2)
    assert Limit("watches", 2).too_low_for([tmp_path])
    monkeypatch.setattr(inotify_limits, "current_limit", lambda kind: 3)
    assert not Limit("watches", 2).too_low_for([tmp_path])  # raised: worth trying inotify again
    assert not Limit("instances", 0).too_low_for([tmp_path])  # others may close theirs at any time
