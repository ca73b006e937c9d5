"""Watching done right: the right files, polling where a mount raises no events, bursts, editors' saves,
dependencies installed in place, and browser live reload."""

import os
import time

import httpx

from browser import Browser
from editor import save_atomic, save_in_place
from repo import RECOVERIES
from waiting import has_text, wait_for, wait_until

ORIGINAL = "Hello from unstuck"


def serve_sample(start_container, env=None):
    served = start_container(env=env)
    wait_for(served.url(), has_text(200, ORIGINAL), on_timeout=served.logs_tail)
    served.wait_state("serving")  # the first generation counted, before a test reads the counters
    return served


def reloads(served) -> int:
    return served.counter("reloads")


def changes(served) -> int:
    return served.counter("changes")


def edit_main(served, marker: str, save=save_in_place) -> float:
    main = served.app_dir / "main.py"
    save(main, main.read_text().replace(ORIGINAL, marker))
    seconds, _ = wait_for(served.url(), has_text(200, marker), on_timeout=served.logs_tail)
    return seconds


def test_local_bind_mount_is_watched_with_inotify(start_container):
    served = serve_sample(start_container)
    assert "watching /workspace with inotify" in served.logs()
    edit_main(served, "inotify edit")


def test_forced_polling_still_reloads(start_container):
    served = serve_sample(start_container, env={"UNSTUCK_POLL": "1"})
    assert "watching /workspace by polling every 500 ms: UNSTUCK_POLL=1" in served.logs()
    RECOVERIES.append(("edit -> served, polling", edit_main(served, "polled edit")))


def test_burst_of_500_files_is_one_reload(start_container):
    served = serve_sample(start_container)
    before = reloads(served)
    generated = served.app_dir / "generated"
    generated.mkdir()
    generated.chmod(0o755)
    for i in range(500):  # like a checkout: many files at once
        (generated / f"mod_{i}.py").write_text(f"VALUE = {i}\n")
    (generated / "__init__.py").write_text("")
    served.wait_status("the burst is reloaded", lambda s: s["counters"]["reloads"] == before + 1 and s["state"] == "serving")
    # A sentinel edit afterwards: its reload is the very next one, so nothing else was triggered between. (The
    # watcher may deliver the burst as two batches, the second while its reload is pending: still one reload, so
    # the count of batches is not what this checks; seen once in CI with a busy machine: changes 3, reloads 1 + 2.)
    edit_main(served, "after the burst")
    status = served.wait_state("serving")
    assert status["counters"]["reloads"] == before + 2, status["counters"]


def test_noise_never_triggers_a_reload(start_container):
    served = serve_sample(start_container)
    before = changes(served)
    app = served.app_dir
    for rel in [".venv/lib/site.py", "venv/lib/x.py", "node_modules/pkg/index.py", "__pycache__/main.cpython-311.pyc",
                ".git/index", "server.log", ".main.py.swp", "main.py~", "data.csv"]:
        path = app / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("noise\n")
    edit_main(served, "only this counts")
    status = served.wait_state("serving")
    assert status["counters"]["changes"] == before + 1, status["reloads"]


def test_an_in_place_save_written_after_a_pause_is_one_reload_and_never_an_error(start_container):
    served = serve_sample(start_container)
    before = served.status()["counters"]
    main = served.app_dir / "main.py"
    text = main.read_text()
    # An editor descheduled between the truncation and the write (a loaded machine): the watcher delivers the
    # empty file on its own. Reloading it would serve "no attribute app" for a moment and count a failure.
    with open(main, "w") as f:
        time.sleep(0.06)  # the editor's pace (beyond the watcher's 20 ms step, well within the 300 ms window): input
        f.write(text.replace(ORIGINAL, "written after a pause"))
    wait_for(served.url(), has_text(200, "written after a pause"), on_timeout=served.logs_tail)
    status = served.wait_state("serving")
    assert status["counters"]["failures"] == before["failures"], status["reloads"]
    assert status["counters"]["changes"] == before["changes"] + 1, status["reloads"]


def test_vim_backup_rename_then_write_serves_the_final_content(start_container):
    served = serve_sample(start_container)
    main = served.app_dir / "main.py"
    text = main.read_text()
    # vim (backupcopy=no): the original is renamed to the backup name, then the new content is written.
    os.rename(main, served.app_dir / "main.py~")
    time.sleep(0.05)  # the editor's pace between its two steps: part of the input, not a wait
    main.write_text(text.replace(ORIGINAL, "saved by vim"))
    wait_for(served.url(), has_text(200, "saved by vim"), on_timeout=served.logs_tail)
    status = served.wait_state("serving")
    assert status["counters"]["failures"] == 0 and status["counters"]["changes"] == 1, status["reloads"]


def test_dependency_added_to_requirements_is_installed_in_place(start_container):
    served = serve_sample(start_container)
    requirements = served.app_dir / "requirements.txt"
    before = served.wait_state("serving")["counters"]["installs"]
    started = time.monotonic()
    save_in_place(requirements, requirements.read_text() + "six==1.16.0\n")
    served.wait_status("the new requirement is installed", lambda s: s["counters"]["installs"] == before + 1
                       and not s["installing"] and s["dependencies_error"] is None and s["state"] == "serving",
               timeout=180)
    RECOVERIES.append(("dependency added -> installed (seconds)", time.monotonic() - started))
    assert "[unstuck] uv: " in served.logs()  # progress is in the logs
    main = served.app_dir / "main.py"
    save_atomic(main, "import six\n" + main.read_text().replace(f'"{ORIGINAL}"', 'f"six {six.__version__}"'))
    wait_for(served.url(), has_text(200, "six 1.16.0"), on_timeout=served.logs_tail)


def test_failed_dependency_install_keeps_the_previous_environment_serving(start_container):
    served = serve_sample(start_container)
    requirements = served.app_dir / "requirements.txt"
    save_in_place(requirements, requirements.read_text() + "unstuck-no-such-package-zz==9.9.9\n")
    status = served.wait_status("the install fails", lambda s: s.get("dependencies_error") and s["state"] == "serving",
                                timeout=180)
    assert "app/requirements.txt" in status["dependencies_error"], status["dependencies_error"]
    assert status["state"] == "serving" and httpx.get(served.url(), timeout=10).status_code == 200
    code, out = served.exec("unstuck", "status")
    assert "dependencies: installing dependencies from app/requirements.txt failed" in out, out
    assert "unstuck-no-such-package-zz" in out


# -- browser live reload ------------------------------------------------------------------------------

def test_livereload_refreshes_the_page_after_reloads_and_fixes(start_container, tmp_path):
    served = start_container(env={"UNSTUCK_LIVERELOAD": "1"})
    wait_for(served.url("/page"), has_text(200, ORIGINAL, "unstuck live reload"), on_timeout=served.logs_tail)
    browser = Browser(served.url("/page"), tmp_path / "chromium-profile")
    try:
        browser.connect()
        shows = lambda needle: lambda: (needle in browser.text(), browser.text()[:200])  # noqa: E731
        wait_until("the page shows the app", shows(ORIGINAL))
        main = served.app_dir / "main.py"
        good = main.read_text()
        save_in_place(main, good.replace(f"<h1>{ORIGINAL}</h1>", "<h1>Live edit</h1>"))
        wait_until("the page refreshes itself after the reload", shows("Live edit"))
        save_in_place(main, good + "\ndef broken(:\n")
        wait_until("the page shows the error after a broken save", shows("SyntaxError"))
        save_in_place(main, good.replace(f"<h1>{ORIGINAL}</h1>", "<h1>Fixed live</h1>"))
        wait_until("the page comes back after the fix", shows("Fixed live"))
    finally:
        browser.close()
