import asyncio

import httpx

from unstuck.errors.error_app import ErrorApp
from unstuck.generation.livereload import ENDPOINT, LiveReload


def page_app(body: bytes, headers=(), chunks: int = 1):
    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/html; charset=utf-8"),
                                (b"content-length", str(len(body)).encode()), *headers]})
        step = max(1, len(body) // chunks)
        parts = [body[i:i + step] for i in range(0, len(body), step)]
        for i, part in enumerate(parts):
            await send({"type": "http.response.body", "body": part, "more_body": i < len(parts) - 1})

    return app


def get(app, path="/", method="GET", accept="text/html") -> httpx.Response:
    async def go():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            return await client.request(method, path, headers={"accept": accept})

    return asyncio.run(go())


def asgi_messages(app, method: str) -> list[dict]:
    """What `app` sends for one request, before any client or server could drop a part of it."""
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": method, "path": "/", "headers": [], "query_string": b""}
    asyncio.run(app(scope, receive, send))
    return sent


def test_script_goes_before_body_end_and_length_is_fixed():
    r = get(LiveReload(page_app(b"<html><body><h1>hi</h1></body></html>")))
    assert r.text.index("unstuck live reload") < r.text.index("</body>")
    assert int(r.headers["content-length"]) == len(r.content)


def test_endpoint_answers_with_this_generations_token():
    wrapped = LiveReload(page_app(b"x"))
    assert get(wrapped, ENDPOINT).json() == {"token": wrapped.token}
    assert LiveReload(page_app(b"x")).token != wrapped.token


def test_the_error_responders_endpoint_also_answers_with_the_error(project):
    failure = project.failure_of("import os\nimport requests_not_declared_pkg\nx = 1\n")
    wrapped = LiveReload(ErrorApp(failure), failure)
    answer = get(wrapped, ENDPOINT).json()
    assert answer["token"] == wrapped.token
    error = answer["error"]
    assert error["headline"] == "ModuleNotFoundError: No module named 'requests_not_declared_pkg' (pkg/mod.py:2)"
    assert (error["file"], error["line"]) == ("pkg/mod.py", 2)
    assert error["hint"].startswith("create pkg/requirements.txt with the line 'requests_not_declared_pkg'")
    frame = error["frame"]
    assert (frame["line"], frame["context_start"], frame["context"]) == (
        2, 1, ["import os", "import requests_not_declared_pkg", "x = 1"])


def test_pages_of_the_app_get_the_overlay_and_the_error_page_only_reloads(project):
    failure = project.failure_of("raise RuntimeError('x')\n")
    app_page = get(LiveReload(page_app(b"<html><body>app</body></html>"))).text
    error_page = get(LiveReload(ErrorApp(failure), failure))
    assert error_page.status_code == 503 and "unstuck live reload" in error_page.text
    assert "var onErrorPage = false;" in app_page and "var onErrorPage = true;" in error_page.text
    assert int(error_page.headers["content-length"]) == len(error_page.content)


def test_the_script_adds_no_global_and_no_closing_script_tag():
    body = get(LiveReload(page_app(b"<html><body>app</body></html>"))).text
    script = body[body.index("<script>") + len("<script>"):body.rindex("</script>")]
    assert "</" not in script  # it would end the script early
    code = script.split("*/", 1)[1].strip()
    statements = [line for line in code.splitlines() if line and not line.startswith("//")]
    assert statements[0] == "(function () {" and statements[-1] == "})();"  # all of it inside one function


def test_streamed_and_compressed_responses_are_untouched():
    body = b"<html><body>" + b"x" * 100 + b"</body></html>"
    assert "unstuck" not in get(LiveReload(page_app(body, chunks=3))).text
    assert "unstuck" not in get(LiveReload(page_app(body, headers=[(b"content-encoding", b"identity")]))).text


def test_head_responses_pass_through_untouched():
    # Asserted on the ASGI messages: HTTP clients drop a HEAD response's body, a script added to it too.
    inner = page_app(b"<html><body>x</body></html>")
    assert asgi_messages(LiveReload(inner), "HEAD") == asgi_messages(inner, "HEAD")
    assert asgi_messages(LiveReload(inner), "GET") != asgi_messages(inner, "GET")  # the same check sees a GET's script


def test_the_script_runs_before_the_pages_own_scripts():
    # It wraps fetch and XMLHttpRequest (a failed request shows in the overlay): a page may fetch at once.
    with_head = get(LiveReload(page_app(b"<html><head><title>t</title></head><body><script>fetch('/x')</script>"
                                        b"</body></html>"))).text
    assert with_head.index("unstuck live reload") < with_head.index("<title>")
    no_head = get(LiveReload(page_app(b"<html><body><header>h</header><p>x</p><script>fetch('/x')</script>"
                                      b"</body></html>"))).text
    assert no_head.index("<p>x</p>") < no_head.index("unstuck live reload") < no_head.index("fetch('/x')")
