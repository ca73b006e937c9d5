"""Docker Desktop, OrbStack and Colima shares, simulated with a FUSE view (tests/fuse_view.py) mounted at
/workspace/app: saves through the view come as inotify events and are served at once; a change or a
deletion beneath it raises no event and is found by the safety poll within its interval."""

import statistics
import time

import pytest

from editor import save_in_place
from fuse_view import Unavailable, fuse_view, sample_with_extra_module
from waiting import has_text, wait_for

SAFETY_S = 5.0  # UNSTUCK_POLL_SAFETY_MS's default
RELOAD_S = 1.5  # a reload after the change is found, and this test's own polling
# Through the event path a save is served in tens of milliseconds; waiting for a poll of 500 ms, 0.5 s.
EVENT_P50_S = 0.2


@pytest.fixture
def view(tmp_path):
    src = tmp_path / "src" / "app"
    sample_with_extra_module(src)
    try:
        with fuse_view(src, tmp_path / "view") as mounted:
            yield src, mounted
    except Unavailable as exc:
        pytest.skip(f"no FUSE view to stand in for a Docker Desktop share: {exc}")


def test_a_docker_desktop_share_is_served_at_event_speed_and_what_events_miss_within_the_safety_poll(
        view, start_container):
    src, mounted = view
    served = start_container(app_dir=mounted)
    wait_for(served.url(), has_text(200, "Hello from unstuck"), on_timeout=served.logs_tail)
    assert ("watching /workspace with inotify, and polling every 5000 ms for what events miss: /workspace/app is a "
            "fuse.grpcfuse mount") in served.logs()

    main = mounted / "main.py"
    seconds = []
    for i in range(5):
        save_in_place(main, main.read_text().replace("Hello from unstuck" if i == 0 else f"through the view {i - 1}",
                                                     f"through the view {i}"))
        took, _ = wait_for(served.url(), has_text(200, f"through the view {i}"), on_timeout=served.logs_tail)
        seconds.append(took)
    assert statistics.median(seconds) < EVENT_P50_S, f"saves through the view took {seconds} s"
    watcher = served.status()["watcher"]
    assert watcher["missed_by_events"] == 0 and watcher["safety_poll_ms"] == 5000, watcher  # no false alarm

    # Beneath the view: no inotify event in the container.
    save_in_place(src / "main.py", (src / "main.py").read_text().replace("through the view 4", "beneath the view"))
    written = time.monotonic()
    wait_for(served.url(), has_text(200, "beneath the view"), timeout=SAFETY_S + RELOAD_S, on_timeout=served.logs_tail)
    changed_after = time.monotonic() - written
    watcher = served.status()["watcher"]
    assert watcher["missed_by_events"] >= 1 and watcher["safety_poll_ms"] == 500, watcher
    assert watcher["first_missed"] == "/workspace/app/main.py", watcher

    wait_for(served.url("/extra"), has_text(200, "extra module"))
    (src / "extra.py").unlink()
    deleted = time.monotonic()
    wait_for(served.url("/extra"), has_text(200, '"none"'), timeout=SAFETY_S + RELOAD_S, on_timeout=served.logs_tail)
    print(f"through the view: save -> served {seconds}; beneath it: change served after {changed_after:.2f} s, "
          f"deletion after {time.monotonic() - deleted:.2f} s")
    logs = served.logs()
    assert logs.count("that no inotify event reported (/workspace/app/main.py): this mount drops events, so it is "
                      "polled every 500 ms from now on") == 1, served.logs_tail()
