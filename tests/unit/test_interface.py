"""What a loaded object is, decided on real framework objects, and WSGI apps served through the adapter."""

import asyncio

import httpx
import pytest
from django.conf import settings as django_settings
from fastapi import FastAPI
from flask import Flask
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from unstuck.app import interface
from unstuck.app.interface import ASGI2, ASGI3, FACTORY, WSGI

if not django_settings.configured:
    django_settings.configure(DEBUG=True, ROOT_URLCONF=__name__, ALLOWED_HOSTS=["*"], SECRET_KEY="test")
urlpatterns = []  # the URLconf of the Django handlers below


def django_asgi():
    from django.core.asgi import get_asgi_application

    return get_asgi_application()


def django_wsgi():
    from django.core.wsgi import get_wsgi_application

    return get_wsgi_application()


async def bare_asgi(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"bare"})


def wsgi_function(environ, start_response):
    start_response("200 OK", [("content-type", "text/plain")])
    return [b"wsgi says " + environ["PATH_INFO"].encode()]


def create_app():
    return FastAPI()


class ASGI2App:
    def __init__(self, scope):
        self.scope = scope

    async def __call__(self, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"asgi2"})


async def async_factory():
    return FastAPI()


@pytest.mark.parametrize("make, expected", [
    (lambda: Flask(__name__), WSGI),
    (django_wsgi, WSGI),
    (django_asgi, ASGI3),
    (FastAPI, ASGI3),
    (lambda: Starlette(routes=[]), ASGI3),
    (lambda: bare_asgi, ASGI3),
    (lambda: wsgi_function, WSGI),
    (lambda: create_app, FACTORY),
    (lambda: ASGI2App, ASGI2),
], ids=["flask", "django-wsgi", "django-asgi", "fastapi", "starlette", "asgi-function", "wsgi-function",
        "factory", "asgi2-class"])
def test_interface_is_detected(make, expected):
    assert interface.detect(make()).interface == expected


@pytest.mark.parametrize("obj, what", [
    ("x", "a str ('x')"),
    ({"a": 1}, "a dict"),
    (Flask, "the class flask.app.Flask (not an instance of it)"),
    (async_factory, "an async function taking ()"),
    (httpx.Client(), "a httpx.Client object"),
])
def test_what_is_not_an_app_is_said(obj, what):
    kind = interface.detect(obj)
    assert (kind.interface, kind.what) == (None, what)


async def _get(app, path: str = "/") -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://localhost") as client:
        return await client.get(path)


def test_flask_is_served_through_the_wsgi_adapter():
    flask_app = Flask(__name__)
    flask_app.add_url_rule("/", "index", lambda: "hello from flask")
    response = asyncio.run(_get(interface.as_asgi3(flask_app, WSGI)))
    assert (response.status_code, response.text) == (200, "hello from flask")


def test_wsgi_function_is_served_through_the_wsgi_adapter():
    response = asyncio.run(_get(interface.as_asgi3(wsgi_function, WSGI), "/there"))
    assert (response.status_code, response.text) == (200, "wsgi says /there")


def test_asgi2_is_served_through_uvicorns_middleware():
    response = asyncio.run(_get(interface.as_asgi3(ASGI2App, ASGI2)))
    assert (response.status_code, response.text) == (200, "asgi2")


def test_asgi3_is_served_as_it_is():
    app = Starlette(routes=[Route("/", lambda request: PlainTextResponse("starlette"))])
    assert interface.as_asgi3(app, ASGI3) is app
