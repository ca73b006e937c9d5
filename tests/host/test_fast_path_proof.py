"""A fast path never shows a failure a fresh interpreter would not (issue 18), with the real reload server and
warm process on this machine, no Docker.

The library `lateconf` reads its configuration from the environment when it is imported, as Django's
settings, Wagtail's hooks or an SDK's client do; the app sets that environment first. A warm process that
preloaded `lateconf` (the app used it on its last run) forks workers in which it was configured too early:
the app's own check fails there, and only there.
"""

import os
import subprocess
import sys

import httpx
import pytest

from reload_loop import drive, free_port, reload_server, served_alone
from repo import REPO
from unstuck.reload import events as ev

LATECONF = 'import os\nMODE = os.environ.get("LATECONF_MODE", "unset")\n'
APP = '''\
import os
os.environ["LATECONF_MODE"] = "configured by the app"
import lateconf
assert lateconf.MODE == "configured by the app", f"lateconf was configured before the app ran: {lateconf.MODE}"
TEXT = "VERSION " + lateconf.MODE


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": TEXT.encode()})
'''



@pytest.fixture(params=["site", "project/lib"], ids=["library-outside", "library-on-PYTHONPATH-inside-APP_DIR"])
def server(tmp_path, monkeypatch, request):
    project = tmp_path / "project"
    (project / "app").mkdir(parents=True)
    (project / "app" / "main.py").write_text(APP.replace("VERSION", "v1"))
    # Outside APP_DIR: a third-party module; inside it but on PYTHONPATH (vendored): the user's to import.
    library = tmp_path / request.param
    (library / "lateconf").mkdir(parents=True)
    (library / "lateconf" / "__init__.py").write_text(LATECONF)
    env = {"PYTHONPATH": f"{REPO / 'entrypoint'}:{library}", "APP_DIR": str(project), "APP_MODULE": "app.main:app",
           "HOST": "127.0.0.1", "PORT": str(free_port()), "UNSTUCK_RUN_DIR": str(tmp_path / "run"),
           "UNSTUCK_GRACE": "0.5", "LOG_LEVEL": "warning"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("LATECONF_MODE", raising=False)
    (tmp_path / "run").mkdir(mode=0o700)
    preload = tmp_path / "run" / "preload.txt"
    preload.write_text("lateconf\n")  # what the app used on its last run: the warm process imports it ahead
    yield from reload_server(preload, modules=["lateconf"])  # what the preload file remembers



def fresh_interpreter_serves(app_dir) -> str:
    """What a fresh interpreter importing the same tree serves: the oracle every fast path must agree with."""
    return subprocess.run([sys.executable, "-c", "import app.main as m; print(m.TEXT)"], cwd=app_dir,
                          env={**os.environ}, capture_output=True, text=True, check=True, timeout=60).stdout.strip()


def test_a_failure_only_a_fast_path_shows_is_never_served_and_the_fast_path_is_narrowed(server):
    """Outside APP_DIR, the warm process preloads `lateconf` and is wrong; inside (on PYTHONPATH), it may not
    import it (the user's tree is hidden there), and is wrong if its forks do not see PYTHONPATH as given:
    either way the page never shows the fast path's failure, and the answers are a fresh interpreter's."""
    app_dir = server.settings.app_dir
    inside = str(app_dir) in os.environ["PYTHONPATH"]
    url = f"http://127.0.0.1:{server.settings.port}/"
    answers = []

    def look() -> None:
        if server.machine.current is not None and server.machine.current.pid is not None:
            try:
                answers.append(httpx.get(url, timeout=10).text)
            except httpx.HTTPError:
                pass

    drive(server, lambda: server.warm.current is not None, "the warm process is ready", timeout=60.0)
    server.act(server.machine.start())
    drive(server, lambda: served_alone(server), "served", each=look, timeout=60.0)
    assert httpx.get(url, timeout=10).text == fresh_interpreter_serves(app_dir) == "v1 configured by the app"
    snapshot = server.machine.snapshot()
    # No error page at any moment (the "starting" page while the first import runs, then the app).
    assert snapshot["counters"]["failures"] == 0 and not [text for text in answers if "Error" in text]
    if inside:  # the warm process never held it: the fork was right, and is served as it is
        assert snapshot["counters"]["fast_path_wrong"] == 0 and snapshot["fast_path"] == []
        return
    assert snapshot["counters"]["fast_path_wrong"] == 1
    assert "failed (AssertionError: lateconf was configured before the app ran: unset" in snapshot["fast_path"][0]

    # Narrowed: the warm process no longer preloads the app's modules, and forks serve the next save right.
    (app_dir / "app" / "main.py").write_text(APP.replace("VERSION", "v2"))
    server.feed(ev.Changes(frozenset({("modified", "app/main.py")})))
    drive(server, lambda: served_alone(server, 2), "the save is served", each=look, timeout=60.0)
    last = server.machine.snapshot()["last_reload"]
    assert last["ok"] and last["from"] in ("spare", "fork")
    assert httpx.get(url, timeout=10).text == fresh_interpreter_serves(app_dir) == "v2 configured by the app"
    assert server.machine.counters["fast_path_wrong"] == 1 and not [text for text in answers if "Error" in text]
