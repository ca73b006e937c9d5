import asyncio
import json

import httpx

from unstuck.error_app import ErrorApp
from unstuck.failure import Failure

FAIL = Failure("import", "SyntaxError", "invalid syntax", "app/main.py", 3, 'File "app/main.py", line 3\n<x>\n')


def get(accept: str | None) -> httpx.Response:
    async def go():
        transport = httpx.ASGITransport(app=ErrorApp(FAIL))
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
    r = get("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
    assert r.status_code == 503 and r.headers["content-type"].startswith("text/html")
    assert "&lt;x&gt;" in r.text and "<x>" not in r.text
    assert "app/main.py:3" in r.text
