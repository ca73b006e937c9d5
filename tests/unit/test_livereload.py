import asyncio

import httpx

from unstuck.livereload import ENDPOINT, LiveReload


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


def get(app, path="/", method="GET") -> httpx.Response:
    async def go():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            return await client.request(method, path)

    return asyncio.run(go())


def test_script_goes_before_body_end_and_length_is_fixed():
    r = get(LiveReload(page_app(b"<html><body><h1>hi</h1></body></html>")))
    assert r.text.index("unstuck live reload") < r.text.index("</body>")
    assert int(r.headers["content-length"]) == len(r.content)


def test_endpoint_answers_with_this_generations_token():
    wrapped = LiveReload(page_app(b"x"))
    assert get(wrapped, ENDPOINT).json() == {"token": wrapped.token}
    assert LiveReload(page_app(b"x")).token != wrapped.token


def test_streamed_compressed_and_head_responses_are_untouched():
    body = b"<html><body>" + b"x" * 100 + b"</body></html>"
    assert "unstuck" not in get(LiveReload(page_app(body, chunks=3))).text
    assert "unstuck" not in get(LiveReload(page_app(body, headers=[(b"content-encoding", b"identity")]))).text
    assert get(LiveReload(page_app(body)), method="HEAD").content == b""
