"""Watching done right: the right files, polling where a mount raises no events, bursts, editors' saves,
dependencies installed in place, and browser live reload."""

import contextlib
import json
import os
import shutil
import subprocess
import time

import httpx
import pytest
from websockets.sync.client import connect as ws_connect

from containers import free_port
from editor import save_atomic, save_in_place
from repo import RECOVERIES
from waiting import has_text, wait_for, wait_until

ORIGINAL = "Hello from unstuck"


def serve_sample(start_container, env=None):
    served = start_container(env=env)
    wait_for(served.url(), has_text(200, ORIGINAL), on_timeout=served.logs_tail)
    return served


def reloads(served) -> int:
    return served.logs().count("[unstuck] reloaded in")


def changes(served) -> int:
    return served.logs().count("[unstuck] change detected")


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
    wait_until("the burst is reloaded", lambda: (reloads(served) == before + 1, served.logs_tail(5)))
    # A sentinel edit afterwards: its reload is the very next one, so nothing else was triggered between.
    edit_main(served, "after the burst")
    assert reloads(served) == before + 2, served.logs_tail()


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
    assert changes(served) == before + 1, served.logs_tail()


def test_vim_backup_rename_then_write_serves_the_final_content(start_container):
    served = serve_sample(start_container)
    main = served.app_dir / "main.py"
    text = main.read_text()
    # vim (backupcopy=no): the original is renamed to the backup name, then the new content is written.
    os.rename(main, served.app_dir / "main.py~")
    time.sleep(0.05)  # the editor's pace between its two steps: part of the input, not a wait
    main.write_text(text.replace(ORIGINAL, "saved by vim"))
    wait_for(served.url(), has_text(200, "saved by vim"), on_timeout=served.logs_tail)
    assert "app broken" not in served.logs(), served.logs_tail()


def test_dependency_added_to_requirements_is_installed_in_place(start_container):
    served = serve_sample(start_container)
    requirements = served.app_dir / "requirements.txt"
    started = time.monotonic()
    save_in_place(requirements, requirements.read_text() + "six==1.16.0\n")
    wait_until("pip installs the new requirement",
               lambda: ("dependencies installed from app/requirements.txt" in served.logs(), served.logs_tail(8)),
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
    wait_until("pip fails", lambda: ("pip install failed for app/requirements.txt" in served.logs(),
                                     served.logs_tail(8)), timeout=180)
    assert httpx.get(served.url(), timeout=10).status_code == 200
    code, out = served.exec("unstuck", "status")
    assert "dependencies: pip install failed for app/requirements.txt" in out, out
    assert "unstuck-no-such-package-zz" in out


# -- browser live reload ------------------------------------------------------------------------------

class Browser:
    """Headless Chromium driven over the DevTools protocol on 127.0.0.1."""

    FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync"]

    def __init__(self, url: str, profile) -> None:
        binary = shutil.which("chromium") or shutil.which("chromium-browser")
        if binary is None:
            pytest.fail("chromium is not installed (apt-get install chromium; .ci/run does it)", pytrace=False)
        self.port = free_port()
        self.proc = subprocess.Popen(
            [binary, *self.FLAGS, f"--user-data-dir={profile}", f"--remote-debugging-port={self.port}",
             "--remote-debugging-address=127.0.0.1", url],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.ws = None
        self.next_id = 0
        self.stack = contextlib.ExitStack()

    def connect(self) -> None:
        def page_target():
            try:
                targets = httpx.get(f"http://127.0.0.1:{self.port}/json/list", timeout=2).json()
            except (httpx.HTTPError, ValueError) as exc:
                return False, str(exc)
            pages = [t for t in targets if t.get("type") == "page"]
            return bool(pages), json.dumps(pages[:1] or targets)

        target = json.loads(wait_until("chromium's page target", page_target))[0]
        self.ws = self.stack.enter_context(ws_connect(target["webSocketDebuggerUrl"], open_timeout=10,
                                                      max_size=None))

    def text(self) -> str:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": "Runtime.evaluate",
                                 "params": {"expression": "document.body ? document.body.innerText : ''"}}))
        while True:
            reply = json.loads(self.ws.recv(timeout=10))
            if reply.get("id") == self.next_id:
                return reply.get("result", {}).get("result", {}).get("value", "") or ""

    def close(self) -> None:
        self.stack.close()
        self.proc.kill()
        self.proc.wait(timeout=10)


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
