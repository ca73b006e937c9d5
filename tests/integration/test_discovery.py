"""Whole projects mounted at /workspace with APP_MODULE unset: the app is found as the framework's own CLI
finds it, served (WSGI ones too), edits are served, a broken save is a 503 naming the file, the fix is
served. Each project declares its framework in requirements.txt, which unstuck installs at start (pip from
PyPI inside the container: slow, hence the long bounded waits)."""

import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from editor import save_atomic, save_in_place
from repo import RECOVERIES
from waiting import has_text, wait_for

FIRST_START_S = 240.0  # pip installs the project's framework first
RELOAD_S = 60.0
DJANGO_ADMIN = Path(sys.executable).parent / "django-admin"


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def flask_source(text: str) -> str:
    return textwrap.dedent(f"""\
        from flask import Flask

        def create_app():
            app = Flask(__name__)

            @app.get("/")
            def index():
                return {text!r}

            return app
    """)


def litestar_source(text: str) -> str:
    return textwrap.dedent(f"""\
        from litestar import Litestar, get

        @get("/")
        async def index() -> str:
            return {text!r}

        app = Litestar([index])
    """)


def flask_factory(root: Path) -> Path:
    return write(root, {"requirements.txt": "flask==3.1.3\n", "app/__init__.py": flask_source("hello from a flask factory")})


def flask_edit(project: Path, text: str) -> None:
    save_in_place(project / "app" / "__init__.py", flask_source(text))


def litestar_app(root: Path) -> Path:
    return write(root, {"requirements.txt": "litestar==2.25.0\n", "app.py": litestar_source("hello from litestar")})


def litestar_edit(project: Path, text: str) -> None:
    save_in_place(project / "app.py", litestar_source(text))


def django_project(root: Path) -> Path:
    # The real generator, run on the host from the test venv: the layout `startproject mysite` makes.
    subprocess.run([str(DJANGO_ADMIN), "startproject", "mysite"], cwd=root, check=True)
    return write(root, {"requirements.txt": "django==5.2.19\n"})


def django_edit(project: Path, text: str) -> None:
    views = project / "mysite" / "mysite" / "views.py"
    save_atomic(views, f"from django.http import HttpResponse\n\n\ndef index(request):\n    return HttpResponse({text!r})\n")
    urls = project / "mysite" / "mysite" / "urls.py"
    if "views.index" not in urls.read_text():
        save_in_place(urls, urls.read_text().replace(
            "urlpatterns = [", "from mysite import views\n\nurlpatterns = [\n    path('', views.index),"))


@dataclass
class Project:
    make: Callable[[Path], Path]
    first: tuple[int, str]  # what the first page shows
    edit: Callable[[Path, str], None]  # serve this text at /
    broken_file: str  # relative to the project; a syntax error is saved into it


PROJECTS = {
    "flask-factory": Project(flask_factory, (200, "hello from a flask factory"), flask_edit, "app/__init__.py"),
    "django-startproject": Project(django_project, (200, "The install worked successfully"), django_edit,
                                   "mysite/mysite/views.py"),
    "litestar": Project(litestar_app, (200, "hello from litestar"), litestar_edit, "app.py"),
}


@pytest.mark.parametrize("name", sorted(PROJECTS))
def test_project_is_found_served_edited_broken_and_fixed(start_project, tmp_path, name):
    spec = PROJECTS[name]
    source = tmp_path / "source"
    source.mkdir()
    served = start_project(spec.make(source))
    wait_for(served.url(), has_text(*spec.first), timeout=FIRST_START_S, on_timeout=served.logs_tail)

    if name == "django-startproject":
        # Served as runserver serves it with DEBUG: the admin's CSS too.
        wait_for(served.url("/static/admin/css/base.css"), has_text(200, "DJANGO Admin styles"),
                 on_timeout=served.logs_tail)

    spec.edit(served.app_dir, f"edited {name}")
    wait_for(served.url(), has_text(200, f"edited {name}"), timeout=RELOAD_S, on_timeout=served.logs_tail)

    broken = served.app_dir / spec.broken_file
    good = broken.read_text()
    save_in_place(broken, good + "\ndef broken(:\n")
    _, page = wait_for(served.url(), has_text(503, "SyntaxError", spec.broken_file), timeout=RELOAD_S,
                       on_timeout=served.logs_tail)
    assert page.headers["retry-after"] == "1"

    spec.edit(served.app_dir, f"fixed {name}")
    seconds, _ = wait_for(served.url(), has_text(200, f"fixed {name}"), timeout=RELOAD_S, on_timeout=served.logs_tail)
    RECOVERIES.append((f"{name} (discovered) fixed -> served", seconds))


def test_nothing_found_says_what_was_searched_then_a_new_main_py_is_served(start_project, tmp_path):
    source = write(tmp_path / "source", {"README.md": "nothing to serve yet\n"})
    served = start_project(source)
    _, page = wait_for(served.url(), has_text(503, "No app found"), on_timeout=served.logs_tail)
    for searched in ("manage.py", "main.py", "app.py", "src/"):
        assert searched in page.text
    assert "set APP_MODULE=package.module:attribute" in page.text

    # FastAPI is in the image (the sample app's requirements): a new file is found at the next reload.
    save_atomic(served.app_dir / "main.py", "from fastapi import FastAPI\n\napp = FastAPI()\n\n\n"
                                            "@app.get('/')\ndef root():\n    return {'found': 'main.py'}\n")
    _, response = wait_for(served.url(), has_text(200, "main.py"), timeout=RELOAD_S, on_timeout=served.logs_tail)
    assert response.json() == {"found": "main.py"}
