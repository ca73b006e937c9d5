"""Loading the app as a worker does (discovery, import, factory, interface, Django as runserver serves it),
and each way that fails, told apart. Each load runs in a fresh interpreter, as a worker is one: Django
configures itself once per process and the user's modules must not leak between tests."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from repo import REPO
from shapes import write

DJANGO_ADMIN = Path(sys.executable).parent / "django-admin"

PROBE = textwrap.dedent("""
    import asyncio, json, os, sys
    from pathlib import Path
    import httpx
    from unstuck.app import loading

    app_dir = Path(os.getcwd())
    sys.path.insert(0, str(app_dir))  # as the worker does
    loaded = loading.load(os.environ.get("APP_MODULE", ""), app_dir)
    out = {"info": loaded.info, "failure": loaded.failure and loaded.failure.to_dict(), "lifespan": loaded.lifespan}
    if loaded.app is not None:
        async def get(path):
            transport = httpx.ASGITransport(app=loaded.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
                response = await client.get(path)
                return [response.status_code, response.text[:2000]]
        out["responses"] = {p: asyncio.run(get(p)) for p in sys.argv[1:]}
    print(json.dumps(out))
""")


def load(app_dir: Path, *paths: str, app_module: str = "") -> dict:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO / "entrypoint"), "APP_MODULE": app_module}
    result = subprocess.run([sys.executable, "-c", PROBE, *paths], cwd=app_dir, env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


FLASK_FACTORY = """\
    from flask import Flask

    def create_app():
        app = Flask(__name__)
        app.add_url_rule("/", "index", lambda: "hello from the flask factory")
        return app
"""


def test_flask_factory_is_found_called_and_served_as_wsgi(tmp_path):
    out = load(write(tmp_path, {"app/__init__.py": FLASK_FACTORY}), "/")
    assert out["failure"] is None
    assert out["info"] == {"import": "app:create_app()", "reason": "app/__init__.py defines the app factory create_app()",
                           "interface": "wsgi"}
    assert out["lifespan"] == "off"
    assert out["responses"]["/"] == [200, "hello from the flask factory"]


def test_app_module_factory_call_syntax(tmp_path):
    out = load(write(tmp_path, {"factory.py": FLASK_FACTORY}), "/", app_module="factory:create_app()")
    assert out["responses"]["/"] == [200, "hello from the flask factory"]
    assert out["info"]["reason"] == "APP_MODULE"


def test_app_module_naming_a_factory_without_parentheses_is_called(tmp_path):
    out = load(write(tmp_path, {"factory.py": FLASK_FACTORY}), "/", app_module="factory:create_app")
    assert out["responses"]["/"] == [200, "hello from the flask factory"]


def test_asgi_app_keeps_its_lifespan(tmp_path):
    out = load(write(tmp_path, {"main.py": "from fastapi import FastAPI\napp = FastAPI()\n"}), "/docs")
    assert out["info"]["interface"] == "asgi3" and out["lifespan"] == "auto"
    assert out["responses"]["/docs"][0] == 200


def startproject(root: Path) -> Path:
    subprocess.run([str(DJANGO_ADMIN), "startproject", "mysite"], cwd=root, check=True)
    return root / "mysite"


def test_django_project_is_served_with_its_static_files_as_runserver_does(tmp_path):
    startproject(tmp_path)
    out = load(tmp_path, "/", "/static/admin/css/base.css")
    assert out["failure"] is None
    assert out["info"] == {"import": "mysite.asgi:application",
                           "reason": "mysite/manage.py sets DJANGO_SETTINGS_MODULE=mysite.settings", "interface": "asgi3"}
    status, page = out["responses"]["/"]
    assert status == 200 and "The install worked successfully" in page
    assert out["responses"]["/static/admin/css/base.css"][0] == 200


def test_django_wsgi_project_is_served_with_its_static_files(tmp_path):
    project = startproject(tmp_path)
    (project / "mysite" / "asgi.py").unlink()
    out = load(tmp_path, "/", "/static/admin/css/base.css")
    assert out["info"]["interface"] == "wsgi" and out["info"]["import"] == "mysite.wsgi:application"
    assert out["responses"]["/"][0] == 200
    assert out["responses"]["/static/admin/css/base.css"][0] == 200


def test_django_broken_urlconf_fails_the_load_with_its_file_and_line(tmp_path):
    project = startproject(tmp_path)
    urls = project / "mysite" / "urls.py"
    urls.write_text(urls.read_text() + "\nfrom mysite.views import index\n")
    failure = load(tmp_path)["failure"]
    assert failure["exc_type"] == "ModuleNotFoundError" and "mysite.views" in failure["message"]
    assert (failure["file"], failure["line"]) == ("mysite/mysite/urls.py", len(urls.read_text().splitlines()))


def test_missing_module_is_named_with_the_file_expected(tmp_path):
    failure = load(tmp_path, app_module="app.service:api")["failure"]
    assert failure["exc_type"] == "ModuleNotFoundError"
    assert failure["message"].startswith("APP_MODULE=app.service:api: no module 'app.service' under")
    assert failure["file"] == "app/service.py"
    assert "Traceback" in failure["traceback"]


def test_missing_import_inside_the_users_module_is_their_failure(tmp_path):
    write(tmp_path, {"main.py": "import os\nimport definitely_not_installed_pkg\napp = definitely_not_installed_pkg.App()\n"})
    failure = load(tmp_path)["failure"]
    assert failure["exc_type"] == "ModuleNotFoundError"
    assert "definitely_not_installed_pkg" in failure["message"] and "APP_MODULE" not in failure["message"]
    assert (failure["file"], failure["line"]) == ("main.py", 2)
    assert 'main.py", line 2' in failure["traceback"]


def test_missing_attribute(tmp_path):
    write(tmp_path, {"main.py": "from fastapi import FastAPI\napp = FastAPI()\n"})
    failure = load(tmp_path, app_module="main:api")["failure"]
    assert failure["exc_type"] == "AttributeError" and failure["file"] == "main.py"
    assert failure["message"] == "APP_MODULE=main:api: module 'main' has no attribute 'api'; define it or fix APP_MODULE"


def test_object_that_is_not_an_app_says_what_it_is_and_what_is_expected(tmp_path):
    write(tmp_path, {"main.py": "SETTINGS = {'debug': True}\n"})
    failure = load(tmp_path, app_module="main:SETTINGS")["failure"]
    assert failure["exc_type"] == "TypeError" and failure["file"] == "main.py"
    assert failure["message"].startswith("APP_MODULE=main:SETTINGS is a dict, not an app; expected an ASGI app")
    assert "a WSGI app" in failure["message"]


def test_factory_that_raises_names_the_users_frame(tmp_path):
    write(tmp_path, {"app.py": """\
        def create_app():
            config = {}
            return config["DATABASE_URL"]
    """})
    out = load(tmp_path)
    failure = out["failure"]
    assert out["info"]["import"] == "app:create_app()"
    assert (failure["exc_type"], failure["file"], failure["line"]) == ("KeyError", "app.py", 3)
    assert 'app.py", line 3, in create_app' in failure["traceback"]


def test_factory_needing_arguments_says_so(tmp_path):
    write(tmp_path, {"factory.py": "def create_app(config):\n    ...\n"})
    failure = load(tmp_path, app_module="factory:create_app()")["failure"]
    assert "the factory needs arguments (config); unstuck calls it with none" in failure["message"]


def test_factory_returning_something_else_says_what(tmp_path):
    write(tmp_path, {"app.py": "def create_app():\n    return 'not an app'\n"})
    failure = load(tmp_path)["failure"]
    assert "the factory returned a str ('not an app'), not an app" in failure["message"]


def test_nothing_found_is_a_discovery_failure_that_says_how_to_set_app_module(tmp_path):
    out = load(write(tmp_path, {"notes.py": "x = 1\n"}))
    failure = out["failure"]
    assert (failure["phase"], failure["exc_type"]) == ("discovery", "AppNotFound")
    assert "set APP_MODULE=package.module:attribute" in failure["message"]
    assert "manage.py" in failure["traceback"]  # the details: every place looked at
    assert out["info"]["import"] is None


FAKE_GEVENT = {
    # A stand-in with gevent's API for what unstuck looks at (gevent itself is not a test dependency).
    "gevent/__init__.py": "",
    "gevent/monkey.py": "_patched = False\n\ndef patch_all():\n    global _patched\n    _patched = True\n\n"
                        "def is_anything_patched():\n    return _patched\n",
}


def test_an_import_that_patches_the_standard_library_is_named_with_its_line_instead_of_served(tmp_path):
    write(tmp_path, {**FAKE_GEVENT, "wsgi.py": "from gevent import monkey\n# production only, once\nmonkey.patch_all()\n"
                                                "from flask import Flask\napp = Flask(__name__)\n"})
    out = load(tmp_path, "/", app_module="wsgi:app")
    assert out["failure"]["exc_type"] == "MonkeyPatched" and (out["failure"]["file"], out["failure"]["line"]) == ("wsgi.py", 3)
    assert "patched the standard library with gevent (wsgi.py:3)" in out["failure"]["message"]
    assert "FLASK_RUN_FROM_CLI" in out["failure"]["hint"] and "responses" not in out


def test_the_app_is_imported_as_flask_run_imports_it(tmp_path):
    """A wsgi.py that patches only outside `flask run`, and a module-level app.run(): both as under `flask run`."""
    write(tmp_path, {**FAKE_GEVENT, "wsgi.py": "import os\nfrom flask import Flask\n"
                                                "if not os.environ.get('FLASK_RUN_FROM_CLI'):\n"
                                                "    from gevent import monkey\n    monkey.patch_all()\n"
                                                "app = Flask(__name__)\napp.add_url_rule('/', 'i', lambda: 'served')\n"
                                                "app.run(port=1)  # would block (and fail) outside flask run\n"})
    out = load(tmp_path, "/", app_module="wsgi:app")
    assert out["failure"] is None and out["responses"]["/"] == [200, "served"]
