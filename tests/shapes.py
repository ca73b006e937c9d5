"""Projects of every shape users have, made at test time, for the tests and `make bench`: each declares its
own dependencies, has the page text its root serves, and knows how to serve other text at `/` (a value
written as a Python expression, so that a new dependency can be used by the edit that needs it)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from editor import save_atomic, save_in_place

DJANGO_ADMIN = Path(sys.executable).parent / "django-admin"
UV = Path(sys.executable).parent / "uv"
DEPENDENCY = ("six", "1.16.0")  # what each project adds in place
# The framework each project declares (pinned: the figures of `make bench --only shapes` compare like with like).
FASTAPI, FLASK, DJANGO, LITESTAR = "fastapi==0.115.6", "flask==3.1.3", "django==5.2.19", "litestar==2.25.0"


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def pyproject(name: str, deps: list[str], package: bool = False) -> str:
    lines = ["[project]", f'name = "{name}"', 'version = "0.1.0"', 'requires-python = ">=3.11"',
             f"dependencies = {deps!r}".replace("'", '"')]
    if package:
        lines += ["", "[build-system]", 'requires = ["uv_build>=0.9,<0.14"]', 'build-backend = "uv_build"']
    return "\n".join(lines) + "\n"


def lock(project: Path) -> None:
    """`uv lock` on the host, as the user would run it (PyPI is reachable from the host)."""
    subprocess.run([str(UV), "lock", "--quiet"], cwd=project, check=True, timeout=300)


# -- sources: `value` is a Python expression, `imports` extra lines at the top --------------------------

# A plain WSGI app, no framework: /tea answers 2, any other path raises a KeyError in `lookup` (line 2).
# A Poetry project (lock pins older versions than the declarations allow, colorama for Windows only, idna in
# an optional group) and the content-hash `poetry lock` (Poetry 2.5.1) wrote for it.
POETRY_PROJECT = """
    [tool.poetry]
    name = "tinyapp"
    version = "0.1.0"
    description = ""
    authors = ["A <a@example.com>"]
    package-mode = false

    [tool.poetry.dependencies]
    python = "^3.11"
    six = ">=1.15"
    colorama = {version = "*", markers = "sys_platform == 'win32'"}

    [tool.poetry.group.dev.dependencies]
    iniconfig = ">=1"

    [tool.poetry.group.docs]
    optional = true

    [tool.poetry.group.docs.dependencies]
    idna = "*"
"""
POETRY_PROJECT_HASH = "140d6f15c920949b25b2a722c605f5821f7b0fbcc1485cb0844b1d31782073d4"


def poetry_lock(packages: list[dict], content_hash: str) -> str:
    """A poetry.lock of format 2.1 (as Poetry 2 writes it, without the files lists) locking `packages`
    ({"name", "version", "groups", "markers"...}; strings and lists of strings)."""
    entries = ["[[package]]\n" + "".join(f"{key} = {json.dumps(value)}\n"
                                       for key, value in {"optional": False, **package}.items())
               for package in packages]
    return "\n".join([*entries, f'[metadata]\nlock-version = "2.1"\npython-versions = "^3.11"\n'
                                 f'content-hash = "{content_hash}"\n'])


PLAIN_WSGI = """\
def lookup(prices, name):
    return prices[name]


def application(environ, start_response):
    price = lookup({"tea": 2}, environ["PATH_INFO"].strip("/"))
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(price).encode()]
"""


def fastapi_source(value: str, imports: str = "") -> str:
    return f"{imports}from fastapi import FastAPI\n\napp = FastAPI()\n\n\n@app.get('/')\ndef root():\n    return {{'page': {value}}}\n"


def flask_source(value: str, imports: str = "") -> str:
    return (f"{imports}from flask import Flask\n\n\ndef create_app():\n    app = Flask(__name__)\n\n"
            f"    @app.get('/')\n    def index():\n        return {value}\n\n    return app\n")


def litestar_source(value: str, imports: str = "") -> str:
    return (f"{imports}from litestar import Litestar, get\n\n\n@get('/')\nasync def index() -> str:\n"
            f"    return {value}\n\n\napp = Litestar([index])\n")


def django_views(value: str, imports: str = "") -> str:
    return f"{imports}from django.http import HttpResponse\n\n\ndef index(request):\n    return HttpResponse({value})\n"


@dataclass
class Shape:
    make: Callable[[Path], Path]  # write the project into an empty directory; return it
    discovered: str  # the import string unstuck should find
    first: str  # text of the first page
    main: str  # the file edits go to, relative to the project
    source: Callable[[str, str], str]  # value, imports -> the main file's text
    add_dependency: Callable[[Path], None]  # declare DEPENDENCY as this project declares dependencies
    framework: str = ""  # its pinned framework requirement (what its install is measured by)
    debug_page: bool = False  # it shows a request's exception on a debug page of its own (Django's DEBUG)

    def serve(self, project: Path, value: str, imports: str = "") -> None:
        save_atomic(project / self.main, self.source(value, imports))


def append_requirement(project: Path) -> None:
    path = project / "requirements.txt"
    save_in_place(path, path.read_text() + f"{DEPENDENCY[0]}=={DEPENDENCY[1]}\n")


def fastapi_locked(root: Path) -> Path:
    write(root, {"pyproject.toml": pyproject("locked-api", [FASTAPI]),
                 "main.py": fastapi_source("'hello from a locked FastAPI project'")})
    lock(root)
    return root


def add_to_locked(project: Path) -> None:
    save_in_place(project / "pyproject.toml", pyproject("locked-api", [FASTAPI, "==".join(DEPENDENCY)]))
    lock(project)


def src_layout(root: Path) -> Path:
    return write(root, {"pyproject.toml": pyproject("shop", [FASTAPI], package=True),
                        "src/shop/__init__.py": "",
                        "src/shop/main.py": fastapi_source("'hello from a src layout'")})


def add_to_pyproject(project: Path) -> None:
    save_in_place(project / "pyproject.toml", pyproject("shop", [FASTAPI, "==".join(DEPENDENCY)],
                                                        package=True))


def flask_factory(root: Path) -> Path:
    return write(root, {"requirements.txt": f"{FLASK}\n",
                        "app/__init__.py": flask_source("'hello from a flask factory'")})


def litestar_app(root: Path) -> Path:
    return write(root, {"requirements.txt": f"{LITESTAR}\n", "app.py": litestar_source("'hello from litestar'")})


def django_project(root: Path) -> Path:
    # The real generator, run on the host from the test venv: the layout `startproject mysite` makes, with
    # a view at / so that edits show.
    subprocess.run([str(DJANGO_ADMIN), "startproject", "mysite"], cwd=root, check=True)
    write(root, {"requirements.txt": f"{DJANGO}\n",
                 "mysite/mysite/views.py": django_views("'hello from django'")})
    urls = root / "mysite" / "mysite" / "urls.py"
    urls.write_text(urls.read_text().replace(
        "urlpatterns = [", "from mysite import views\n\nurlpatterns = [\n    path('', views.index),"))
    return root


SHAPES = {
    "fastapi-uv-lock": Shape(fastapi_locked, "main:app", "hello from a locked FastAPI project", "main.py",
                             fastapi_source, add_to_locked, FASTAPI),
    "src-layout": Shape(src_layout, "shop.main:app", "hello from a src layout", "src/shop/main.py",
                        fastapi_source, add_to_pyproject, FASTAPI),
    "flask-factory": Shape(flask_factory, "app:create_app()", "hello from a flask factory", "app/__init__.py",
                           flask_source, append_requirement, FLASK),
    "django-startproject": Shape(django_project, "mysite.asgi:application", "hello from django",
                                 "mysite/mysite/views.py", django_views, append_requirement, DJANGO, debug_page=True),
    "litestar": Shape(litestar_app, "app:app", "hello from litestar", "app.py", litestar_source, append_requirement, LITESTAR),
}
