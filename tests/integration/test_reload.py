"""Edits saved from the host into the mount are served; broken saves show their error and heal on a fix."""

import pytest

from containers import LABEL, SESSION, free_port
from editor import SAVES
from repo import RECOVERIES, REPO
from waiting import has_text, wait_for, wait_until

ORIGINAL = "Hello from unstuck"

BREAKS = {
    "syntax_error": (lambda src: src + "\ndef broken(:\n", "SyntaxError"),
    "missing_import": (lambda src: "import definitely_not_installed_pkg\n" + src, "ModuleNotFoundError"),
    "import_time_exception": (lambda src: src + "\nraise RuntimeError('boom during import')\n", "RuntimeError"),
}


def serve_sample(start_container):
    served = start_container()
    wait_for(served.url(), has_text(200, ORIGINAL), on_timeout=served.logs_tail)
    return served


@pytest.mark.parametrize("save_name", sorted(SAVES))
def test_edit_is_served(start_container, save_name):
    served = serve_sample(start_container)
    before = served.wait_state("serving")["counters"]["reloads"]
    main = served.app_dir / "main.py"
    SAVES[save_name](main, main.read_text().replace(ORIGINAL, f"edited by {save_name}"))
    seconds, _ = wait_for(served.url(), has_text(200, f"edited by {save_name}"), on_timeout=served.logs_tail)
    RECOVERIES.append((f"edit ({save_name}) -> served", seconds))
    status = served.wait_state("serving")
    # The reload names the file that changed (the atomic save's temp file is not watched).
    assert status["last_reload"]["trigger"] == "app/main.py modified" if save_name == "in_place" else \
        status["last_reload"]["trigger"].startswith("app/main.py"), status["last_reload"]
    assert status["counters"]["reloads"] == before + 1 and status["last_reload"]["ok"]


@pytest.mark.parametrize("save_name", sorted(SAVES))
@pytest.mark.parametrize("break_name", sorted(BREAKS))
def test_broken_save_shows_error_then_fix_is_served(start_container, break_name, save_name):
    served = serve_sample(start_container)
    main = served.app_dir / "main.py"
    good = main.read_text()
    breaker, exc_name = BREAKS[break_name]
    SAVES[save_name](main, breaker(good))

    # While broken the port answers at once with 503, the exception, the file and the line.
    _, broken = wait_for(served.url(), has_text(503, exc_name, "main.py"), on_timeout=served.logs_tail)
    assert broken.headers["retry-after"] == "1"
    status = served.wait_state("broken")
    assert status["failure"]["exc_type"] == exc_name and status["failure"]["file"] == "app/main.py"
    assert status["failure"]["line"] and status["last_reload"]["ok"] is False
    # The log's failure line says which file and line, too (it reaches `docker logs` through two pipes: waited for).
    wait_until("the failure is logged with its file and line", lambda: (
        exc_name in served.logs() and f"app/main.py:{status['failure']['line']}" in served.logs(), served.logs_tail(8)))

    marker = f"fixed after {break_name}"
    SAVES[save_name](main, good.replace(ORIGINAL, marker))
    seconds, fixed = wait_for(served.url(), has_text(200, marker), on_timeout=served.logs_tail)
    RECOVERIES.append((f"{break_name} ({save_name}) fixed -> served", seconds))
    assert fixed.json()["message"] == marker


def test_error_page_is_negotiated(start_container):
    served = serve_sample(start_container)
    main = served.app_dir / "main.py"
    SAVES["in_place"](main, main.read_text() + "\ndef broken(:\n")
    wait_for(served.url(), has_text(503, "SyntaxError"), on_timeout=served.logs_tail)
    _, as_json = wait_for(served.url(), lambda r: r.status_code == 503, headers={"accept": "application/json"})
    assert as_json.json()["exception"] == "SyntaxError" and as_json.json()["file"] == "app/main.py"
    _, as_html = wait_for(served.url(), lambda r: r.status_code == 503, headers={"accept": "text/html"})
    assert as_html.headers["content-type"].startswith("text/html") and "SyntaxError" in as_html.text


def test_missing_app_module_is_named_and_served_once_created(start_container):
    served = start_container(env={"APP_MODULE": "app.service:api"})
    # The "starting" page names it too while the import is checked in a fresh interpreter: the error itself.
    _, broken = wait_for(served.url(), has_text(503, "APP_MODULE=app.service:api"), on_timeout=served.logs_tail)
    assert "APP_MODULE=app.service:api" in broken.text
    # Logged once the fresh interpreter failed, which may be after its page is served: waited for.
    wait_until("the failure is logged", lambda: ("APP_MODULE=app.service:api" in served.logs(), served.logs_tail(8)))
    (served.app_dir / "service.py").write_text(
        "from fastapi import FastAPI\napi = FastAPI()\n\n@api.get('/')\ndef root():\n    return {'service': 'up'}\n")
    wait_for(served.url(), has_text(200, "up"), on_timeout=served.logs_tail)


@pytest.mark.parametrize("env", [{"UNSTUCK_WARM": "0"}, {"UNSTUCK_RELOADER": "uvicorn"}], ids=["no-warm", "uvicorn"])
def test_other_reload_modes_serve_edits(start_container, env):
    served = start_container(env=env)
    wait_for(served.url(), has_text(200, ORIGINAL), on_timeout=served.logs_tail)
    main = served.app_dir / "main.py"
    SAVES["in_place"](main, main.read_text().replace(ORIGINAL, "edited in another mode"))
    wait_for(served.url(), has_text(200, "edited in another mode"), on_timeout=served.logs_tail)
    code, out = served.exec("unstuck", "status")
    assert code == 0 and "serving" in out, out


def test_image_serves_its_copy_of_the_app_without_a_mount(docker_client, image):
    port = free_port()
    container = docker_client.containers.run(image.id, detach=True, labels={LABEL: SESSION},
                                             ports={"8000/tcp": ("127.0.0.1", port)})
    try:
        wait_for(f"http://127.0.0.1:{port}/", has_text(200, ORIGINAL))
    finally:
        container.remove(force=True)


def test_app_module_naming_something_else_than_an_app_says_so(start_container):
    source = (REPO / "app" / "main.py").read_text() + '\nORIGINAL_TEXT = "x"\n'
    served = start_container(env={"APP_MODULE": "app.main:ORIGINAL_TEXT"}, files={"main.py": source})
    _, broken = wait_for(served.url(), has_text(503, "is a str ('x'), not an app"), on_timeout=served.logs_tail)
    assert "APP_MODULE=app.main:ORIGINAL_TEXT" in broken.text
