"""Static app discovery on temp project trees: every layout the frameworks' CLIs find, and their order."""

import subprocess
import sys
from pathlib import Path

import pytest

from unstuck.app import discovery
from unstuck.app.discovery import Found, NotFound

FASTAPI_APP = "from fastapi import FastAPI\napp = FastAPI()\n"
DJANGO_ADMIN = Path(sys.executable).parent / "django-admin"


def tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def found(root: Path, environ=None) -> Found:
    result = discovery.discover(root, environ or {})
    assert isinstance(result, Found), result
    return result


def startproject(root: Path, *args: str) -> None:
    subprocess.run([str(DJANGO_ADMIN), "startproject", "mysite", *args], cwd=root, check=True)


# -- Django --------------------------------------------------------------------------------------

def test_django_startproject_one_level_down(tmp_path):
    startproject(tmp_path)  # creates mysite/manage.py and mysite/mysite/{settings,asgi,wsgi}.py
    result = found(tmp_path)
    assert result.import_string == "mysite.asgi:application" and not result.factory
    assert result.sys_path == (str(tmp_path / "mysite"),)
    assert result.environ == (("DJANGO_SETTINGS_MODULE", "mysite.settings"),)
    assert result.describe() == ("found mysite.asgi:application: "
                                 "mysite/manage.py sets DJANGO_SETTINGS_MODULE=mysite.settings")


def test_django_startproject_in_place(tmp_path):
    startproject(tmp_path, ".")
    result = found(tmp_path)
    assert (result.import_string, result.sys_path) == ("mysite.asgi:application", ())
    assert result.reason == "manage.py sets DJANGO_SETTINGS_MODULE=mysite.settings"


def test_django_without_asgi_py_serves_wsgi_py(tmp_path):
    startproject(tmp_path, ".")
    (tmp_path / "mysite" / "asgi.py").unlink()
    assert found(tmp_path).import_string == "mysite.wsgi:application"


def test_django_settings_from_the_environment_win_over_manage_py(tmp_path):
    startproject(tmp_path, ".")
    tree(tmp_path, {"other/__init__.py": "", "other/settings.py": "", "other/asgi.py": "application = None\n"})
    result = found(tmp_path, {"DJANGO_SETTINGS_MODULE": "other.settings"})
    assert result.import_string == "other.asgi:application"
    assert result.reason == "DJANGO_SETTINGS_MODULE=other.settings (environment)"


def test_django_asgi_application_setting_wins_over_asgi_py(tmp_path):
    startproject(tmp_path, ".")
    settings = tmp_path / "mysite" / "settings.py"
    settings.write_text(settings.read_text() + "\nASGI_APPLICATION = 'mysite.routing.application'\n")
    assert found(tmp_path).import_string == "mysite.routing:application"


def test_django_project_wins_over_main_py(tmp_path):
    startproject(tmp_path, ".")
    tree(tmp_path, {"main.py": FASTAPI_APP})
    assert found(tmp_path).import_string == "mysite.asgi:application"


# -- entry files ---------------------------------------------------------------------------------

@pytest.mark.parametrize("files, expected", [
    ({"main.py": FASTAPI_APP}, "main:app"),
    ({"app.py": "from litestar import Litestar\napp = Litestar([])\n"}, "app:app"),
    ({"api.py": FASTAPI_APP}, "api:app"),
    ({"asgi.py": "from mysite import app as application\n"}, "asgi:application"),
    ({"wsgi.py": "from flask import Flask\napplication = Flask(__name__)\n"}, "wsgi:application"),
    ({"main.py": "from fastapi import FastAPI\napi = FastAPI()\n"}, "main:api"),
    ({"main.py": "async def app(scope, receive, send):\n    pass\n"}, "main:app"),
    ({"main.py": "from fastapi import FastAPI\nserver = FastAPI()\n"}, "main:server"),
    ({"app/__init__.py": "", "app/main.py": FASTAPI_APP}, "app.main:app"),
    ({"app/__init__.py": "from flask import Flask\napp = Flask(__name__)\n"}, "app:app"),
    ({"src/__init__.py": "", "src/main.py": FASTAPI_APP}, "src.main:app"),
])
def test_module_level_app_in_an_entry_file(tmp_path, files, expected):
    result = found(tree(tmp_path, files))
    assert (result.import_string, result.factory, result.sys_path) == (expected, False, ())


def test_app_dir_without_init_is_its_own_import_root(tmp_path):
    # fastapi-cli's rule: app/main.py outside a package is the module `main`, imported from app/.
    result = found(tree(tmp_path, {"app/main.py": FASTAPI_APP}))
    assert (result.import_string, result.sys_path) == ("main:app", (str(tmp_path / "app"),))


def test_src_layout_puts_src_on_sys_path(tmp_path):
    result = found(tree(tmp_path, {"src/shop/__init__.py": "", "src/shop/main.py": FASTAPI_APP}))
    assert (result.import_string, result.sys_path) == ("shop.main:app", (str(tmp_path / "src"),))
    assert result.reason == "src/shop/main.py defines app"


def test_src_layout_package_factory(tmp_path):
    result = found(tree(tmp_path, {"src/shop/__init__.py": "def create_app():\n    ...\n"}))
    assert (result.import_string, result.factory, result.sys_path) == ("shop:create_app", True, (str(tmp_path / "src"),))


@pytest.mark.parametrize("name", ["create_app", "make_app"])
def test_factory_taking_no_required_argument(tmp_path, name):
    result = found(tree(tmp_path, {"app.py": f"def {name}(config=None):\n    ...\n"}))
    assert (result.import_string, result.factory) == (f"app:{name}", True)
    assert result.describe() == f"found app:{name}(): app.py defines the app factory {name}()"


def test_module_level_app_wins_over_a_factory_in_the_same_file(tmp_path):
    source = "from flask import Flask\ndef create_app():\n    return Flask(__name__)\napp = create_app()\n"
    assert found(tree(tmp_path, {"app.py": source})).import_string == "app:app"


def test_factory_that_needs_arguments_is_not_taken_and_says_why(tmp_path):
    result = discovery.discover(tree(tmp_path, {"app.py": "def create_app(config):\n    ...\n"}), {})
    assert isinstance(result, NotFound)
    assert "app.py: create_app(config) needs arguments" in result.details()


@pytest.mark.parametrize("source", [
    'app = "not an app"\n',
    "from fastapi import APIRouter\napi = APIRouter()\n",
    "from flask import Blueprint\napp = Blueprint('x', __name__)\n",
    "if __name__ == '__main__':\n    app = object()\n",
    "def helper():\n    app = 1\n",
])
def test_names_that_are_not_apps_are_not_taken(tmp_path, source):
    assert isinstance(discovery.discover(tree(tmp_path, {"main.py": source}), {}), NotFound)


def test_two_app_objects_are_ambiguous(tmp_path):
    source = "from fastapi import FastAPI\npublic = FastAPI()\nadmin = FastAPI()\n"
    result = discovery.discover(tree(tmp_path, {"main.py": source}), {})
    assert isinstance(result, NotFound) and "main.py makes several apps (public, admin)" in result.details()


@pytest.mark.parametrize("files, expected", [
    # Entry files before main/app/api (flask run: wsgi.py before app.py; servers' entry modules first).
    ({"wsgi.py": "from app import create_app\napp = create_app()\n", "app.py": "def create_app():\n    ...\n"},
     "wsgi:app"),
    ({"asgi.py": "app = object()\n", "wsgi.py": "app = object()\n"}, "asgi:app"),
    ({"wsgi.py": "app = object()\n", "main.py": FASTAPI_APP}, "wsgi:app"),
    # fastapi-cli: main.py, app.py, api.py.
    ({"main.py": FASTAPI_APP, "app.py": FASTAPI_APP, "api.py": FASTAPI_APP}, "main:app"),
    ({"app.py": FASTAPI_APP, "api.py": FASTAPI_APP}, "app:app"),
    # The root before app/, app/ before src/.
    ({"main.py": FASTAPI_APP, "app/__init__.py": "", "app/main.py": FASTAPI_APP}, "main:app"),
    ({"app/__init__.py": "", "app/main.py": FASTAPI_APP, "src/main.py": FASTAPI_APP}, "app.main:app"),
    # A file without an app does not stop the search.
    ({"main.py": "print('a script')\n", "app.py": FASTAPI_APP}, "app:app"),
    # The package's own __init__.py comes after its entry files.
    ({"app/__init__.py": "def create_app():\n    ...\n", "app/main.py": FASTAPI_APP}, "app.main:app"),
    # pyproject.toml's [tool.fastapi] entrypoint before any guess.
    ({"pyproject.toml": '[tool.fastapi]\nentrypoint = "backend.server:api"\n', "main.py": FASTAPI_APP},
     "backend.server:api"),
])
def test_precedence(tmp_path, files, expected):
    assert found(tree(tmp_path, files)).import_string == expected


def test_a_candidate_that_does_not_parse_is_chosen_so_its_error_is_shown(tmp_path):
    result = found(tree(tmp_path, {"main.py": "def broken(:\n", "app.py": FASTAPI_APP}))
    assert result.import_string == "main:app" and "main.py does not parse" in result.reason


def test_nothing_found_says_what_was_searched_and_how_to_set_app_module(tmp_path):
    result = discovery.discover(tree(tmp_path, {"main.py": "print('hello')\n", "README.md": "x"}), {})
    assert isinstance(result, NotFound)
    message = result.message()
    assert "\n" not in message
    assert f"no app found in {tmp_path}" in message
    for searched in ("manage.py", "pyproject.toml", "main.py", "app.py", "wsgi.py", "app/", "src/"):
        assert searched in message
    assert "set APP_MODULE=package.module:attribute" in message
    assert "main.py defines no app, application, api" in result.details()


# -- APP_MODULE ----------------------------------------------------------------------------------

def test_app_module_always_wins(tmp_path):
    startproject(tmp_path, ".")
    tree(tmp_path, {"main.py": FASTAPI_APP})
    result = discovery.resolve("service.api:server", tmp_path, {})
    assert (result.import_string, result.factory, result.reason) == ("service.api:server", False, "APP_MODULE")


def test_app_module_factory_call_syntax(tmp_path):
    result = discovery.resolve("pkg.factory:create_app()", tmp_path, {})
    assert (result.import_string, result.factory) == ("pkg.factory:create_app", True)
    assert result.to_dict() == {"import": "pkg.factory:create_app()", "reason": "APP_MODULE"}


def test_empty_app_module_discovers(tmp_path):
    assert discovery.resolve("  ", tree(tmp_path, {"main.py": FASTAPI_APP}), {}).import_string == "main:app"


def test_target_names_what_the_next_generation_loads(tmp_path):
    assert discovery.target("", tmp_path) == "no app found"
    tree(tmp_path, {"app/__init__.py": "", "app/main.py": FASTAPI_APP})
    assert discovery.target("", tmp_path) == "app.main:app"
    assert discovery.target("pkg:create_app()", tmp_path) == "pkg:create_app()"
