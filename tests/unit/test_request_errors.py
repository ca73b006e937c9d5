"""An exception raised while handling a request gets unstuck's error page (request_errors.py), unless the
framework shows one of its own; framework apps are loaded and wrapped as the worker does (loading.load, then
worker.wrap_app), each in a fresh interpreter (Django configures itself once per process)."""

import asyncio
import html
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest

from repo import REPO
from shapes import PLAIN_WSGI, write
from unstuck.generation.livereload import ENDPOINT, LiveReload
from unstuck.errors.request_errors import HOLD_BYTES, MARKER, RequestErrors

TEXT, JSON, HTML = "*/*", "application/json", "text/html,application/xhtml+xml,*/*;q=0.8"

PROBE = textwrap.dedent("""
    import asyncio, json, os, sys
    from dataclasses import replace
    from pathlib import Path
    import httpx
    from unstuck import config
    from unstuck.app import loading
    from unstuck.generation import worker

    app_dir = Path(os.getcwd())
    sys.path.insert(0, str(app_dir))  # as the worker does
    settings = replace(config.load(os.environ, check_dirs=False), app_dir=app_dir)
    loaded = loading.load(os.environ["APP_MODULE"], app_dir)
    assert loaded.failure is None, loaded.failure
    app = worker.wrap_app(loaded.app, settings)

    async def get(path, accept):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            r = await client.get(path, headers={"accept": accept})
            return {"status": r.status_code, "type": r.headers.get("content-type", ""),
                    "marker": r.headers.get("x-unstuck-error"), "text": r.text}

    print(json.dumps([asyncio.run(get(path, accept)) for path, accept in json.loads(sys.argv[1])]))
""")


def serve(app_dir: Path, app_module: str, *requests: tuple[str, str], **env: str) -> tuple[list[dict], str]:
    """(the responses to `requests` (path, accept), the log) of the app served as a worker serves it."""
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO / "entrypoint"), "APP_MODULE": app_module, **env}
    result = subprocess.run([sys.executable, "-c", PROBE, json.dumps(requests)], cwd=app_dir, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    *printed, responses = result.stdout.splitlines()
    # a2wsgi gives WSGI apps stdout as wsgi.errors (Flask logs there); in a container both streams are the log.
    return json.loads(responses), "\n".join(printed) + "\n" + result.stderr


def line_of(source: str, needle: str) -> int:
    return next(i for i, line in enumerate(source.splitlines(), 1) if needle in line)


def failing_mark(page: str) -> tuple[str, str]:
    start = page.index('<mark class="failing">')
    row = page[start:page.index("</mark>", start)]
    number = row.split('<span class="ln">')[1].split("</span>")[0].strip()
    return number, html.unescape(row.split("</span> ", 1)[1])


# -- FastAPI / Starlette ------------------------------------------------------------------------------

FASTAPI = """\
import json

from fastapi import FastAPI

app = FastAPI()


def total(items):
    return sum(i["cost"] for i in items)


@app.get("/orders")
def orders():
    return {"total": total([{"price": 3}])}


@app.get("/parse")
def parse():
    return json.loads("{not json")


@app.get("/fine")
def fine():
    return {"ok": True}
"""


def test_fastapi_view_error_gets_the_page_as_text_json_and_html(tmp_path):
    (text, as_json, page, fine), log = serve(write(tmp_path, {"main.py": FASTAPI}), "main:app",
                                             ("/orders", TEXT), ("/orders", JSON), ("/orders", HTML), ("/fine", HTML))
    line = line_of(FASTAPI, 'i["cost"]')
    assert [r["status"] for r in (text, as_json, page)] == [500, 500, 500] and all(
        r["marker"] for r in (text, as_json, page))
    # curl: the request line, the exception with the user's file and line, the source around it.
    assert text["type"].startswith("text/plain")
    assert text["text"].startswith(f"500 The request failed\nGET /orders\nKeyError: 'cost' (main.py:{line})\n")
    assert f"  > {line:>2} |     return sum(i[\"cost\"] for i in items)" in text["text"]
    # API clients: the same as data, the user's frames outermost first.
    body = json.loads(as_json["text"])
    assert (body["exception"], body["file"], body["line"], body["request"]) == ("KeyError", "main.py", line,
                                                                                 "GET /orders")
    assert [(f["function"], f["line"]) for f in body["frames"] if f["user"]][:2] == [
        ("orders", line_of(FASTAPI, "total([{")), ("total", line)]
    # Browsers: the user's failing line highlighted, under "Your code".
    assert page["type"].startswith("text/html")
    assert "<h2>Your code</h2>" in page["text"] and '<p class="request">GET /orders</p>' in page["text"]
    assert failing_mark(page["text"]) == (str(line), '    return sum(i["cost"] for i in items)')
    assert fine["status"] == 200 and fine["marker"] is None
    # The log: one line with the request, the file and line; the traceback once.
    assert f"GET /orders failed: KeyError: 'cost' (main.py:{line})" in log
    assert log.count("Traceback (most recent call last)") == 3, log  # one per failed request, no more


def test_library_frames_are_folded_below_the_users_frame(tmp_path):
    [page], _ = serve(write(tmp_path, {"main.py": FASTAPI}), "main:app", ("/parse", HTML))
    text = page["text"]
    assert page["status"] == 500 and "JSONDecodeError" in text
    user, library = text.index("<h2>Your code</h2>"), text.index('<details class="library">')
    line = line_of(FASTAPI, "json.loads")
    assert user < text.index(f"main.py:{line} in parse") < library
    assert "json/decoder.py" in text[library:] and "json/decoder.py" not in text[:library]
    assert failing_mark(text) == (str(line), '    return json.loads("{not json")')


def test_error_pages_off_leaves_the_frameworks_500(tmp_path):
    [text], log = serve(write(tmp_path, {"main.py": FASTAPI}), "main:app", ("/orders", TEXT), UNSTUCK_ERROR_PAGES="0")
    assert (text["status"], text["text"], text["marker"]) == (500, "Internal Server Error", None)
    assert "failed" not in log


def test_starlette_debug_page_and_the_apps_own_500_handler_are_left_alone(tmp_path):
    source = FASTAPI.replace("app = FastAPI()", "app = FastAPI(debug=True)")
    own = FASTAPI + textwrap.dedent("""
        from fastapi.responses import PlainTextResponse


        @app.exception_handler(Exception)
        def oops(request, exc):
            return PlainTextResponse("our own oops page", status_code=500)
    """)
    app_dir = write(tmp_path, {"debug.py": source, "own.py": own})
    [debug], _ = serve(app_dir, "debug:app", ("/orders", HTML))
    assert debug["status"] == 500 and debug["marker"] is None
    assert "<title>Starlette Debugger</title>" in debug["text"]
    [handled], _ = serve(app_dir, "own:app", ("/orders", HTML))
    assert (handled["status"], handled["text"], handled["marker"]) == (500, "our own oops page", None)


# -- WSGI -----------------------------------------------------------------------------------------------

def test_plain_wsgi_app_error_gets_the_page(tmp_path):
    [ok, failed], log = serve(write(tmp_path, {"wsgi_app.py": PLAIN_WSGI}), "wsgi_app:application",
                              ("/tea", TEXT), ("/coffee", TEXT))
    assert (ok["status"], ok["text"]) == (200, "2")
    line = line_of(PLAIN_WSGI, "return prices[name]")
    assert failed["status"] == 500 and failed["marker"]
    assert f"GET /coffee\nKeyError: 'coffee' (wsgi_app.py:{line})" in failed["text"]
    assert log.count("Traceback (most recent call last)") == 1
    assert "name = " not in failed["text"]  # local variables only when asked for
    [with_locals], _ = serve(tmp_path, "wsgi_app:application", ("/coffee", TEXT), UNSTUCK_ERROR_PAGES="locals")
    assert "    prices = {'tea': 2}\n    name = 'coffee'\n" in with_locals["text"]


FLASK = """\
from flask import Flask

app = Flask(__name__)


def price(name):
    return {"tea": 2}[name]


@app.get("/<name>")
def index(name):
    return str(price(name))
"""


def test_flask_with_debug_off_gets_the_page_instead_of_its_generic_500(tmp_path):
    [text, page], log = serve(write(tmp_path, {"flask_app.py": FLASK}), "flask_app:app",
                              ("/coffee", TEXT), ("/coffee", HTML))
    line = line_of(FLASK, '{"tea": 2}[name]')
    assert text["status"] == 500 and text["marker"]
    assert f"GET /coffee\nKeyError: 'coffee' (flask_app.py:{line})" in text["text"]
    assert failing_mark(page["text"]) == (str(line), '    return {"tea": 2}[name]')
    # Flask logged the traceback ("Exception on /coffee [GET]"); unstuck adds one line, not a second traceback.
    assert log.count("Traceback (most recent call last)") == 2, log  # one per request
    assert "Exception on /coffee [GET]" in log and f"GET /coffee failed: KeyError: 'coffee' (flask_app.py:{line})" in log


def test_flask_with_debug_on_propagates_to_the_page(tmp_path):
    source = FLASK.replace("app = Flask(__name__)", "app = Flask(__name__)\napp.debug = True")
    [text], _ = serve(write(tmp_path, {"flask_app.py": source}), "flask_app:app", ("/coffee", TEXT))
    assert text["status"] == 500 and text["marker"] and "KeyError: 'coffee' (flask_app.py:" in text["text"]


def test_werkzeugs_debugger_and_flasks_own_500_handler_are_left_alone(tmp_path):
    debugger = FLASK.replace("app = Flask(__name__)", "app = Flask(__name__)\napp.debug = True") + textwrap.dedent("""
        from werkzeug.debug import DebuggedApplication

        app.wsgi_app = DebuggedApplication(app.wsgi_app, evalex=False)
    """)
    own = FLASK + textwrap.dedent("""

        @app.errorhandler(500)
        def oops(error):
            return "our own oops page", 500
    """)
    app_dir = write(tmp_path, {"debugger.py": debugger, "own.py": own})
    [page], _ = serve(app_dir, "debugger:app", ("/coffee", HTML))
    assert page["status"] == 500 and page["marker"] is None and "Werkzeug Debugger" in page["text"]
    [handled], _ = serve(app_dir, "own:app", ("/coffee", HTML))
    assert (handled["status"], handled["text"], handled["marker"]) == (500, "our own oops page", None)


LITESTAR = """\
from litestar import Litestar, get
from litestar.exceptions import NotFoundException


def price(name):
    return {"tea": 2}[name]


@get("/{name:str}")
async def index(name: str) -> str:
    if name == "none":
        raise NotFoundException("no such drink")
    return str(price(name))


app = Litestar([index])
"""


def test_litestar_with_debug_off_gets_the_page_and_its_debug_page_and_404s_are_left_alone(tmp_path):
    debug = LITESTAR.replace("Litestar([index])", "Litestar([index], debug=True)")
    app_dir = write(tmp_path, {"ls_app.py": LITESTAR, "ls_debug.py": debug})
    [text, missing], log = serve(app_dir, "ls_app:app", ("/coffee", TEXT), ("/none", JSON))
    line = line_of(LITESTAR, '{"tea": 2}[name]')
    assert text["status"] == 500 and text["marker"], text
    assert f"GET /coffee\nKeyError: 'coffee' (ls_app.py:{line})" in text["text"]
    assert log.count("Traceback (most recent call last)") == 1, log
    assert missing["status"] == 404 and missing["marker"] is None and "no such drink" in missing["text"]
    [page], _ = serve(app_dir, "ls_debug:app", ("/coffee", TEXT))
    assert page["status"] == 500 and page["marker"] is None and "KeyError" in page["text"]


# -- Django ---------------------------------------------------------------------------------------------

DJANGO = {
    "mysite/__init__.py": "",
    "mysite/settings.py": """\
        import os

        SECRET_KEY = "test"
        DEBUG = os.environ.get("DJANGO_DEBUG") == "1"
        ALLOWED_HOSTS = ["*"]
        ROOT_URLCONF = os.environ.get("DJANGO_URLCONF", "mysite.urls")
        INSTALLED_APPS = []
        TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "DIRS": [], "APP_DIRS": False}]
    """,
    "mysite/views.py": """\
        from django.http import HttpResponse


        def price(name):
            return {"tea": 2}[name]


        def index(request, name):
            return HttpResponse(str(price(name)))


        def oops(request):
            return HttpResponse("our own oops page", status=500)
    """,
    "mysite/urls.py": """\
        from django.urls import path

        from mysite import views

        urlpatterns = [path("<name>", views.index)]
    """,
    "mysite/own_urls.py": """\
        from mysite.urls import urlpatterns  # noqa: F401

        handler500 = "mysite.views.oops"
    """,
    "mysite/asgi.py": """\
        import os

        from django.core.asgi import get_asgi_application

        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
        application = get_asgi_application()
    """,
    "mysite/wsgi.py": """\
        import os

        from django.core.wsgi import get_wsgi_application

        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
        application = get_wsgi_application()
    """,
}


@pytest.mark.parametrize("module", ["mysite.asgi:application", "mysite.wsgi:application"])
def test_django_with_debug_off_gets_the_page_instead_of_its_generic_500(tmp_path, module):
    [text], log = serve(write(tmp_path, DJANGO), module, ("/coffee", TEXT))
    assert text["status"] == 500 and text["marker"], text
    assert "GET /coffee\nKeyError: 'coffee' (mysite/views.py:5)" in text["text"]
    assert log.count("Traceback (most recent call last)") == 1, log


def test_djangos_debug_page_and_its_handler500_are_left_alone(tmp_path):
    app_dir = write(tmp_path, DJANGO)
    [page], _ = serve(app_dir, "mysite.asgi:application", ("/coffee", HTML), DJANGO_DEBUG="1")
    assert page["status"] == 500 and page["marker"] is None
    assert "KeyError" in page["text"] and "Request Method:" in page["text"]  # Django's technical 500 page
    [handled], _ = serve(app_dir, "mysite.asgi:application", ("/coffee", HTML), DJANGO_URLCONF="mysite.own_urls")
    assert (handled["status"], handled["text"], handled["marker"]) == (500, "our own oops page", None)


# -- the middleware itself, on plain ASGI apps in this process -----------------------------------------

def call(app, path="/", accept=HTML, method="GET") -> tuple[list[dict], BaseException | None]:
    """(what reached the client, the exception that went on to the server)."""
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "root_path": "", "query_string": b"",
             "headers": [(b"accept", accept.encode())]}
    try:
        asyncio.run(app(scope, receive, send))
    except Exception as exc:  # noqa: BLE001
        return sent, exc
    return sent, None


def body_of(sent: list[dict]) -> str:
    return b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body").decode()


def user_app(project, source: str):
    """The ASGI callable `app` of pkg/mod.py, a module of the user's project."""
    (project.root / "pkg" / "mod.py").write_text(textwrap.dedent(source))
    import importlib

    importlib.invalidate_caches()
    return importlib.import_module("pkg.mod").app


ESCAPE = """\
async def app(scope, receive, send):
    api_key, note = "sk-live-123", "<script>alert('local')</script>"
    raise ValueError("<script>alert('message')</script>")
"""


def test_html_in_the_message_source_and_locals_is_escaped_and_secrets_are_masked(project):
    app = user_app(project, ESCAPE)
    sent, raised = call(RequestErrors(app, project.root, with_locals=True))
    page = body_of(sent)
    assert raised is None and sent[0]["status"] == 500
    assert "<script>alert(" not in page  # the page's only script is unstuck's own (none on this page)
    assert html.escape("ValueError: <script>alert('message')</script>") in page
    assert html.escape("""    api_key, note = "sk-live-123", "<script>alert('local')</script>\"""") in page
    assert f"<th>note</th><td><code>{html.escape(repr('<script>alert(' + chr(39) + 'local' + chr(39) + ')</script>'))}" in page
    assert "<th>api_key</th><td><code>********</code>" in page and "sk-live-123" not in page.split("</pre>")[-1]


def test_locals_are_shown_only_when_asked_for(project):
    app = user_app(project, ESCAPE)
    page = body_of(call(RequestErrors(app, project.root))[0])
    assert 'class="locals"' not in page and "********" not in page
    as_json = json.loads(body_of(call(RequestErrors(app, project.root), accept=JSON)[0]))
    assert all("locals" not in f for f in as_json["frames"])


STREAM = """\
async def app(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"first part", "more_body": True})
    raise RuntimeError("broken mid-way")
"""


def test_an_error_after_the_headers_went_out_ends_the_response_as_without_unstuck(project):
    app = user_app(project, STREAM)
    sent, raised = call(RequestErrors(app, project.root))
    assert [m.get("status") for m in sent if m["type"] == "http.response.start"] == [200]
    assert body_of(sent) == "first part" and isinstance(raised, RuntimeError)  # uvicorn logs it, ends it


def test_the_apps_own_500_goes_out_untouched_short_or_streamed(project):
    def own_500(chunks: list[bytes]):
        async def app(scope, receive, send):
            await send({"type": "http.response.start", "status": 500, "headers": [(b"content-type", b"text/plain")]})
            for i, chunk in enumerate(chunks):
                await send({"type": "http.response.body", "body": chunk, "more_body": i < len(chunks) - 1})
        return app

    for chunks in ([b"our own oops page"], [b"x" * HOLD_BYTES, b"y" * 10, b"z"]):
        sent, raised = call(RequestErrors(own_500(chunks), project.root))
        direct, _ = call(own_500(chunks))
        assert raised is None and sent == direct


def test_the_live_reload_endpoint_gives_the_overlay_a_failed_requests_error(project):
    errors = RequestErrors(user_app(project, ESCAPE), project.root)
    app = LiveReload(errors, request_errors=errors.lookup)

    async def go():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            failed = await client.get("/orders?page=2", headers={"accept": HTML})
            found = (await client.get(f"{ENDPOINT}?error={failed.headers[MARKER.decode()]}")).json()
            missing = (await client.get(f"{ENDPOINT}?error=nope")).json()
            return failed, found, missing

    failed, found, missing = asyncio.run(go())
    assert "unstuck live reload" in failed.text  # the page carries the script: a fix reloads it
    error = found["request_error"]
    assert (error["request"], error["exception"], error["file"], error["phase"]) == (
        "GET /orders?page=2", "ValueError", "pkg/mod.py", "request")
    assert error["frame"]["context"][error["frame"]["line"] - error["frame"]["context_start"]].startswith("    raise")
    assert missing["request_error"] is None and missing["token"] == found["token"]
