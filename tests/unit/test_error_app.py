import asyncio
import html
import json
import re

import httpx

from unstuck.errors.error_app import ErrorApp
from unstuck.errors.failure import Failure

FAIL = Failure("import", "SyntaxError", "invalid syntax", "app/main.py", 3, 'File "app/main.py", line 3\n<x>\n')
HTML = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"

LIBRARY = "def parse(text):\n    return int(text)\n"
USER = "import fakelib\n\n\ndef load():\n    return fakelib.parse('<x>')\n\n\nvalue = load()\n"


def get(accept: str | None, failure: Failure = FAIL) -> httpx.Response:
    async def go():
        transport = httpx.ASGITransport(app=ErrorApp(failure))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.get("/anything", headers={"accept": accept} if accept else {})

    return asyncio.run(go())


def test_plain_text_for_curl():
    r = get(None)
    assert r.status_code == 503 and r.headers["retry-after"] == "1"
    assert r.headers["content-type"].startswith("text/plain")
    assert "SyntaxError: invalid syntax (app/main.py:3)" in r.text


def test_json_for_api_clients():
    r = get("application/json")
    body = json.loads(r.text)
    assert r.status_code == 503
    assert (body["exception"], body["file"], body["line"]) == ("SyntaxError", "app/main.py", 3)


def test_html_for_browsers_escapes_the_traceback():
    r = get(HTML)
    assert r.status_code == 503 and r.headers["content-type"].startswith("text/html")
    assert "&lt;x&gt;" in r.text and "<x>" not in r.text
    assert "app/main.py:3" in r.text


def test_html_leads_with_the_users_code_and_folds_library_frames_and_traceback(project):
    page = get(HTML, project.failure_of(USER, fakelib=LIBRARY)).text
    user, library = page.index("<h2>Your code</h2>"), page.index('<details class="library">')
    assert user < library < page.index('<details class="traceback">')
    # The user's failing line is highlighted, with its neighbours and its number, before the library's.
    failing = re.search(r'<mark class="failing"><span class="ln">(\d+)</span> (.*?)</mark>', page)
    assert failing.groups() == ("5", html.escape("    return fakelib.parse('<x>')"))
    assert failing.start() < library and "def load():" in page[user:failing.start()]
    assert "pkg/mod.py:5 in load" in page[user:library]
    assert "fakelib.py:2 in parse" in page[library:]
    assert "<x>" not in page


def test_html_shows_the_hint(project):
    page = get(HTML, project.failure_of("import requests_not_declared_pkg\n")).text
    assert re.search(r'<p class="hint">.*create pkg/requirements.txt with the line &#x27;requests_not_declared_pkg&#x27;',
                     page)


def test_html_marks_a_syntax_errors_offset_with_a_caret(project):
    page = get(HTML, project.failure_of("x = 1\ndef broken(:\n    pass\n")).text
    lines = page.splitlines()
    index = next(i for i, line in enumerate(lines) if '<mark class="failing">' in line)
    source, caret = (html.unescape(re.sub(r"<[^>]+>", "", line)) for line in lines[index:index + 2])
    assert source == "2 def broken(:"
    assert caret.strip() == "^" and caret.index("^") == source.index(":")  # where Python points


def test_json_carries_the_frames(project):
    body = get("application/json", project.failure_of(USER, fakelib=LIBRARY)).json()
    assert [(f["file"].rsplit("/", 1)[-1], f["line"], f["function"], f["user"]) for f in body["frames"]] == [
        ("mod.py", 8, "<module>", True), ("mod.py", 5, "load", True), ("fakelib.py", 2, "parse", False)]
    failing = next(f for f in body["frames"] if f["failing"])
    assert failing["context"][failing["line"] - failing["context_start"]] == "    return fakelib.parse('<x>')"
    assert body["hint"] is None and body["frames_omitted"] == 0


def test_text_shows_the_hint_and_the_failing_lines_context(project):
    text = get(None, project.failure_of("import os\nimport requests_not_declared_pkg\nx = 1\n")).text
    head = text.split("Traceback")[0]
    assert "hint: create pkg/requirements.txt with the line 'requests_not_declared_pkg'" in head
    assert "    1 | import os\n  > 2 | import requests_not_declared_pkg\n" in head
    assert "    3 | x = 1\n" in head


def test_the_page_reloads_itself_when_another_response_would_be_served():
    r = get(HTML)
    assert f"var f=\"{r.headers['x-unstuck-failure']}\"" in r.text
    other = get(HTML, Failure("import", "SyntaxError", "invalid syntax", "app/main.py", 4))
    assert other.headers["x-unstuck-failure"] != r.headers["x-unstuck-failure"]
    assert '<noscript><meta http-equiv="refresh"' in r.text  # without JavaScript, a plain refresh
