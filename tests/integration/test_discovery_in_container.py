"""A project in which nothing can be served: the port says what was searched and how to set APP_MODULE,
and the app is served as soon as it exists (every shape of project is in test_shapes.py)."""

from editor import save_atomic
from shapes import write
from waiting import has_text, wait_for


def test_nothing_found_says_what_was_searched_then_a_new_main_py_is_served(start_project, tmp_path):
    source = write(tmp_path / "source", {"README.md": "nothing to serve yet\n"})
    served = start_project(source)
    _, page = wait_for(served.url(), has_text(503, "No app found"), on_timeout=served.logs_tail)
    for searched in ("manage.py", "main.py", "app.py", "src/"):
        assert searched in page.text
    assert "set APP_MODULE=package.module:attribute" in page.text

    # A new file is found at the next reload (a bare ASGI app: nothing to install).
    save_atomic(served.app_dir / "main.py", "async def app(scope, receive, send):\n"
                "    if scope['type'] != 'http':\n        return\n"
                "    await send({'type': 'http.response.start', 'status': 200, 'headers': []})\n"
                "    await send({'type': 'http.response.body', 'body': b'found main.py'})\n")
    wait_for(served.url(), has_text(200, "found main.py"), timeout=60, on_timeout=served.logs_tail)
