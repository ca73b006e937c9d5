"""A project at /workspace with its own declarations (pyproject.toml, uv.lock), its dependencies in the project
environment on a named volume at /home/app/.unstuck: locked versions served exactly, additions installed in
place, a second container installing nothing, and a Python that does not fit said in one line."""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
import textwrap
import time
import tomllib
import uuid
from pathlib import Path

import docker
import httpx
import pytest

from containers import LABEL, SESSION, Served, free_port, readable_copy
from editor import save_atomic, save_in_place
from repo import RECOVERIES
from shapes import poetry_lock
from uv import find_uv_bin
from waiting import has_text, wait_for, wait_until

ENV_MOUNT = "/home/app/.unstuck"
VERSIONS_APP = """
    import fastapi, pydantic, starlette
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/")
    def root():
        return {"fastapi": fastapi.__version__, "pydantic": pydantic.VERSION, "starlette": starlette.__version__,
                "from": fastapi.__file__}
"""


@pytest.fixture
def env_volume(docker_client):
    volume = docker_client.volumes.create(name=f"unstuck-test-{SESSION}-env-{uuid.uuid4().hex[:6]}",
                                          labels={LABEL: SESSION})
    yield volume
    volume.remove(force=True)


@pytest.fixture
def run_project(docker_client, image, env_volume):
    """run_project(project_dir, env=...) -> Served: the project mounted at /workspace (APP_MODULE=main:app),
    the named volume at /home/app/.unstuck."""
    started = []

    def run(project_dir: Path, env: dict | None = None) -> Served:
        port = free_port()
        container = docker_client.containers.run(
            image.id, detach=True, labels={LABEL: SESSION}, environment={"APP_MODULE": "main:app", **(env or {})},
            ports={"8000/tcp": ("127.0.0.1", port)},
            volumes={str(project_dir): {"bind": "/workspace", "mode": "rw"},
                     env_volume.name: {"bind": ENV_MOUNT, "mode": "rw"}},
            name=f"unstuck-test-{SESSION}-{uuid.uuid4().hex[:6]}")
        started.append(container)
        return Served(container, port, project_dir)

    yield run
    for container in started:  # before the volume they use is removed
        try:
            container.remove(force=True)
        except docker.errors.NotFound:
            pass


@pytest.fixture(scope="session")
def image_python(docker_client, image) -> tuple[int, int, int]:
    out = docker_client.containers.run(image.id, ["python", "-c", "import sys; print(*sys.version_info[:3])"],
                                       remove=True, labels={LABEL: SESSION})
    return tuple(int(x) for x in out.split())


def make_project(tmp_path: Path, files: dict[str, str]) -> Path:
    src = tmp_path / "src"
    for rel, text in files.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_text(textwrap.dedent(text).lstrip())
    project = tmp_path / "project"
    readable_copy(src, project)  # readable by the container's user
    return project


def pyproject(deps: list[str], requires_python: str = ">=3.11") -> str:
    return textwrap.dedent(f"""
        [project]
        name = "svc"
        version = "0.1.0"
        requires-python = "{requires_python}"
        dependencies = {deps!r}
        """).replace("'", '"').lstrip()


def uv_lock(project: Path) -> dict[str, str]:
    """`uv lock` with the host's uv (what a developer runs, or `uv add` does); the locked versions."""
    subprocess.run([find_uv_bin(), "lock", "--quiet", "--project", str(project)], check=True,
                   env={**os.environ, "UV_PYTHON": sys.executable})
    (project / "uv.lock").chmod(0o644)
    return {p["name"]: p.get("version") for p in tomllib.loads((project / "uv.lock").read_text())["package"]}


def served_json(served: Served) -> dict:
    return httpx.get(served.url(), timeout=10).json()


def test_a_locked_project_is_served_with_exactly_the_locked_versions(tmp_path, run_project):
    # fastapi 0.115.6 is not the sample app's version (already in the image's project environment).
    project = make_project(tmp_path, {"pyproject.toml": pyproject(["fastapi==0.115.6"]), "main.py": VERSIONS_APP})
    locked = uv_lock(project)
    served = run_project(project)
    wait_for(served.url(), has_text(200, f'"fastapi":"{locked["fastapi"]}"'), timeout=180,
             on_timeout=served.logs_tail)
    versions = served_json(served)
    assert {k: versions[k] for k in ("fastapi", "pydantic", "starlette")} == \
        {k: locked[k] for k in ("fastapi", "pydantic", "starlette")}
    assert versions["from"].startswith(f"{ENV_MOUNT}/venv/"), versions
    assert "[unstuck] uv: " in served.logs()

    # A dependency added to pyproject.toml without `uv lock`: said clearly, and the app keeps serving.
    save_in_place(project / "pyproject.toml", pyproject(["fastapi==0.115.6", "six==1.16.0"]))
    reported = served.wait_status("the stale lock is reported", lambda s: "pyproject.toml" in (
        s.get("dependencies_error") or ""), timeout=180)
    assert "needs to be updated" in reported["dependencies_error"], reported["dependencies_error"]
    _, status = served.exec("unstuck", "status")
    assert "needs to be updated" in status and "uv lock" in status, status
    assert httpx.get(served.url(), timeout=10).status_code == 200

    # `uv lock` (or `uv add six`) on the host: installed in place, importable by the next reload.
    installs = reported["counters"]["installs"]
    locked = uv_lock(project)
    served.wait_status("the new lock is installed", lambda s: s["counters"]["installs"] > installs
                       and not s["installing"] and s["dependencies_error"] is None, timeout=180)
    save_atomic(project / "main.py", "import six\n" + textwrap.dedent(VERSIONS_APP).replace(
        '"from": fastapi.__file__', '"from": fastapi.__file__, "six": six.__version__'))
    wait_for(served.url(), has_text(200, f'"six":"{locked["six"]}"'), timeout=60, on_timeout=served.logs_tail)


def test_a_second_container_on_the_same_volume_installs_nothing(tmp_path, run_project):
    project = make_project(tmp_path, {"pyproject.toml": pyproject(["fastapi==0.115.6"]), "main.py": VERSIONS_APP})
    locked = uv_lock(project)
    first = run_project(project)
    wait_for(first.url(), has_text(200, f'"fastapi":"{locked["fastapi"]}"'), timeout=180, on_timeout=first.logs_tail)
    first.container.remove(force=True)

    second = run_project(project, env={"LOG_LEVEL": "debug"})
    wait_for(second.url(), has_text(200, f'"fastapi":"{locked["fastapi"]}"'), timeout=120, on_timeout=second.logs_tail)
    wait_until("the install check ran", lambda: ("dependencies up to date (pyproject.toml, uv.lock)" in second.logs(),
                                                 second.logs_tail(8)))
    assert "installing dependencies" not in second.logs() and "[unstuck] uv: " not in second.logs()


def test_a_dependency_added_to_pyproject_is_installed_in_place(tmp_path, run_project):
    app = "from fastapi import FastAPI\napp = FastAPI()\n\n@app.get('/')\ndef root():\n    return {'ok': 'plain'}\n"
    project = make_project(tmp_path, {"pyproject.toml": pyproject(["fastapi"]), "main.py": app})
    served = run_project(project)
    wait_for(served.url(), has_text(200, "plain"), timeout=180, on_timeout=served.logs_tail)
    wait_until("the first install", lambda: ("dependencies installed from pyproject.toml" in served.logs(),
                                             served.logs_tail(8)), timeout=180)
    before = served.logs().count("dependencies installed from pyproject.toml")
    save_in_place(project / "pyproject.toml", pyproject(["fastapi", "iniconfig==2.0.0"]))
    wait_until("the addition is installed", lambda: (
        served.logs().count("dependencies installed from pyproject.toml") > before, served.logs_tail(8)), timeout=180)
    save_atomic(project / "main.py", "import iniconfig\n" + app.replace("'plain'", "iniconfig.__name__"))
    wait_for(served.url(), has_text(200, '"ok":"iniconfig"'), timeout=60, on_timeout=served.logs_tail)


def test_a_python_that_does_not_fit_is_said_in_one_line_and_nothing_is_installed(tmp_path, run_project,
                                                                                 image_python):
    major, minor, micro = image_python
    wanted = f">={major}.{minor + 1}"
    line = (f"pyproject.toml requires Python {wanted}; this image runs {major}.{minor}.{micro}: "
            f"rebuild with BASE_IMAGE=python:{major}.{minor + 1}-slim")
    app = "import six\nfrom fastapi import FastAPI\napp = FastAPI()\n\n@app.get('/')\ndef root():\n" \
          "    return {'six': six.__version__}\n"
    project = make_project(tmp_path, {"pyproject.toml": pyproject(["fastapi", "six==1.16.0"], wanted), "main.py": app})
    served = run_project(project)
    wait_for(served.url(), has_text(503, line), timeout=120, on_timeout=served.logs_tail)  # plain text for curl
    page = httpx.get(served.url(), headers={"Accept": "text/html"}, timeout=10).text
    assert html.escape(line) in page and "The project needs another Python" in page
    assert line in served.logs()
    _, status = served.exec("unstuck", "status")
    assert line in status, status
    logs = served.logs()
    assert "installing dependencies" not in logs and "[unstuck] uv: " not in logs
    assert "No module named" not in logs  # the app was not imported

    started = time.monotonic()
    save_in_place(project / "pyproject.toml", pyproject(["fastapi", "six==1.16.0"], f">={major}.{minor}"))
    wait_for(served.url(), has_text(200, '"six":"1.16.0"'), timeout=180, on_timeout=served.logs_tail)
    RECOVERIES.append(("requires-python fixed -> installed and served", time.monotonic() - started))


DEV_SET_APP = """
    import importlib.util
    import fastapi, psycopg, six
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/")
    def root():
        return {"fastapi": fastapi.__version__, "six": six.__version__, "psycopg": psycopg.pq.__impl__,
                "sphinx": importlib.util.find_spec("sphinx") is not None}
"""
HEROKU_STYLE = {  # as a Wagtail demo site or a cookiecutter project lays out its requirements
    "requirements.txt": "-r requirements/production.txt\n",
    # psycopg[c] has no wheel: it builds with the image's compiler and libpq headers.
    "requirements/base.txt": "fastapi==0.115.6\npsycopg[c]==3.3.9\n",
    # Production's additions must never be installed in development: this one does not even exist.
    "requirements/production.txt": "-r base.txt\nunstuck-no-such-package-zz==9.9.9\n",
    "requirements/development.txt": "-r base.txt\nsix==1.16.0\n",
    "tests/fixtures/old/requirements.txt": "fastapi==0.65.2\n",
    "docs/requirements.txt": "sphinx==8.1.3\n",
    "main.py": DEV_SET_APP,
}


def test_the_dev_set_is_installed_and_said_and_a_build_that_fails_is_named_first(tmp_path, run_project):
    project = make_project(tmp_path, HEROKU_STYLE)
    served = run_project(project)
    wait_for(served.url(), has_text(200, '"fastapi":"0.115.6"', '"six":"1.16.0"', '"psycopg":"c"', '"sphinx":false'),
             timeout=300, on_timeout=served.logs_tail)
    chosen = ("dependency set: requirements/development.txt (the dev set in preference to the production set)")
    left_out = ("left out: requirements.txt, docs/requirements.txt, requirements/production.txt, "
                "tests/fixtures/old/requirements.txt (not the chosen set or below the project root; "
                "set UNSTUCK_REQUIREMENTS to choose)")
    logs = served.logs()
    assert chosen in logs and left_out in logs, served.logs_tail()
    _, status = served.exec("unstuck", "status")
    assert f"dependencies: {chosen}" in status and f"dependencies: {left_out}" in status, status
    took = re.search(r"dependencies installed from requirements/development.txt in ([\d.]+) s", logs)
    RECOVERIES.append(("dev set (fastapi, psycopg[c] built, six) installed at start", float(took.group(1))))

    # uv trusts the system's CA store, as pip does: without SSL_CERT_FILE it still reaches the index
    # (here through a proxy that re-signs TLS with a CA only the image's store has).
    code, out = served.exec("env", "-u", "SSL_CERT_FILE", "uv", "pip", "install", "--dry-run", "--no-cache",
                            "iniconfig==2.0.0")
    assert code == 0, out

    # A package that cannot be built: the package and the cause come first, and the app keeps serving.
    save_in_place(project / "requirements/development.txt", "-r base.txt\nsix==1.16.0\npython-ldap==3.4.4\n")
    failed = served.wait_status("the install fails", lambda s: bool(s.get("dependencies_error")), timeout=300)
    headline = failed["dependencies_error"].splitlines()[0]
    assert headline.startswith("installing dependencies from requirements/development.txt failed: python-ldap "
                               "3.4.4 cannot be built: the C header "), headline
    assert "(Debian packages libldap2-dev libsasl2-dev); rebuild the image with --build-arg " \
           "UNSTUCK_BUILD_PACKAGES=" in headline
    assert "the previous environment keeps serving" in served.logs()
    assert httpx.get(served.url(), timeout=10).status_code == 200


POETRY_APP = """
    from importlib import metadata

    import fastapi
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/")
    def root():
        return {"fastapi": fastapi.__version__, "iniconfig": metadata.version("iniconfig")}
"""
POETRY_PYPROJECT = """
    [tool.poetry]
    name = "svc"
    version = "0.1.0"
    package-mode = false

    [tool.poetry.dependencies]
    python = "^3.11"
    fastapi = "^0.115"

    [tool.poetry.group.dev.dependencies]
    iniconfig = ">=1"
"""
def test_a_poetry_project_is_served_with_its_locked_versions_and_a_saved_lock_is_installed(tmp_path, run_project):
    from unstuck.project import poetry

    content_hash = poetry.content_hash(tomllib.loads(textwrap.dedent(POETRY_PYPROJECT)))

    def locked(fastapi: str) -> str:
        return poetry_lock([{"name": "fastapi", "version": fastapi, "groups": ["main"]},
                            {"name": "iniconfig", "version": "1.1.1", "groups": ["dev"]}], content_hash)

    project = make_project(tmp_path, {"pyproject.toml": POETRY_PYPROJECT, "main.py": POETRY_APP,
                                      "poetry.lock": locked("0.115.6")})
    served = run_project(project)
    # The lock's fastapi (not the newest 0.115.x) and the dev group, as `poetry install` would have them.
    wait_for(served.url(), has_text(200, '"fastapi":"0.115.6"', '"iniconfig":"1.1.1"'), timeout=180,
             on_timeout=served.logs_tail)
    chosen = ("dependency set: pyproject.toml, poetry.lock (the project root has a poetry.lock: main + dev at its "
              "versions, as `poetry install`)")
    _, status = served.exec("unstuck", "status")
    assert f"dependencies: {chosen}" in status, status
    took = re.search(r"dependencies installed from pyproject.toml, poetry.lock in ([\d.]+) s", served.logs())
    RECOVERIES.append(("poetry.lock (fastapi, dev group) installed at start", float(took.group(1))))

    # `poetry update fastapi` on the host rewrites poetry.lock: installed in place, served by the next reload.
    save_in_place(project / "poetry.lock", locked("0.115.5"))
    wait_for(served.url(), has_text(200, '"fastapi":"0.115.5"'), timeout=180, on_timeout=served.logs_tail)
    assert "out of date" not in served.logs()


# A project with a [build-system] that does not build (setuptools refuses a flat layout of several packages),
# as projects that install with `pip install -r requirements.txt` often have.
UNBUILDABLE = {
    "pyproject.toml": """
        [project]
        name = "shop"
        version = "0.1.0"
        dependencies = ["six==1.16.0"]

        [build-system]
        requires = ["setuptools>=61"]
        build-backend = "setuptools.build_meta"
        """,
    "core/__init__.py": "GREETING = 'from the tree'\n",
    "migrations/__init__.py": "",
    "main.py": """
        import json
        import core, six


        async def app(scope, receive, send):
            if scope["type"] != "http":
                return
            body = json.dumps({"six": six.__version__, "core": core.GREETING, "from": core.__file__}).encode()
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": body})
        """,
}


def test_a_project_that_cannot_be_built_is_served_from_its_tree_with_its_dependencies_and_says_so_once(
        tmp_path, run_project):
    project = make_project(tmp_path, UNBUILDABLE)
    served = run_project(project)
    wait_for(served.url(), has_text(200, '"six": "1.16.0"', '"core": "from the tree"'), timeout=180,
             on_timeout=served.logs_tail)
    assert served_json(served)["from"] == "/workspace/core/__init__.py"  # its source, not an installed copy
    why = ("the project itself (/workspace) is not installed as a package: shop cannot be built: Multiple top-level "
           "packages discovered in a flat-layout: ['core', 'migrations']; its dependencies are installed and its "
           "source is imported from APP_DIR; add `[tool.uv]` `package = false` to pyproject.toml if it is not meant "
           "to be installed as a package")
    status = served.wait_status("the status says why", lambda s: s.get("dependencies_warning") is not None)
    assert status["dependencies_warning"] == why and status["dependencies_error"] is None, status
    _, text = served.exec("unstuck", "status")
    assert f"dependencies: {why}" in text.splitlines(), text
    assert served.logs().count(why) == 1, served.logs_tail()
