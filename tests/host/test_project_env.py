"""The real uv installing into a temp project environment on this machine (PyPI must be reachable), and
the runtime interpreter importing from it the way an app generation does."""

import json
import logging
import os
import subprocess
import sys
import textwrap
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

from repo import REPO
from shapes import POETRY_PROJECT, POETRY_PROJECT_HASH, poetry_lock
from unstuck.project import dependencies, project_env
from uv import find_uv_bin
from waiting import wait_until


@pytest.fixture(autouse=True)
def uv_cache(tmp_path_factory, monkeypatch):
    """One uv cache for the session, in a temp dir: nothing outside temp dirs is touched."""
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "uv-cache"))


@pytest.fixture
def project(tmp_path):
    root, env = tmp_path / "project", tmp_path / "env"
    root.mkdir()

    def write(files: dict[str, str]) -> None:
        for rel, text in files.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text))

    return root, env, write


def in_app(root: Path, env: Path, code: str) -> str:
    """Run `code` in the runtime interpreter after the hook an app generation runs; its stdout."""
    script = f"from pathlib import Path\nfrom unstuck.project import project_env\n" \
             f"assert project_env.activate(Path({str(root)!r}), Path({str(env)!r})) is None\n{code}"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=root,
                            env={**os.environ, "PYTHONPATH": str(REPO / "entrypoint")})
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def deps_cli(root: Path, env: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "unstuck", "deps"], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO / "entrypoint"), "APP_DIR": str(root),
                               "UNSTUCK_PROJECT_ENV": str(env)})


def pyc(env: Path, module: str) -> list[Path]:
    return list((project_env.site_packages(env) / "__pycache__").glob(f"{module}.*.pyc"))


def installed(env: Path) -> dict[str, str]:
    return {d.metadata["Name"].lower(): d.version
            for d in metadata.distributions(path=[str(project_env.site_packages(env))])}


def test_requirements_install_into_a_new_environment_and_a_second_round_installs_nothing(project, caplog):
    root, env, write = project
    write({"app/requirements.txt": "six==1.16.0\n"})
    outcome = dependencies.install_now(root, env=env)
    assert outcome.ok, outcome.error
    assert in_app(root, env, "import six; print(six.__version__, six.__file__)").startswith(f"1.16.0 {env}/")
    # Bytecode is compiled after the install, in the background (the image runs with PYTHONDONTWRITEBYTECODE).
    wait_until("six's bytecode is compiled", lambda: (bool(pyc(env, "six")), "no .pyc yet"))
    with caplog.at_level(logging.DEBUG, logger="unstuck"):
        assert dependencies.pending(root, env) == []
    assert [r.levelno for r in caplog.records if "up to date" in r.message] == [logging.DEBUG]


def test_the_cli_installs_and_says_so_in_one_line_when_it_cannot(project):
    root, env, write = project
    write({"requirements.txt": "six==1.16.0\n"})
    done = deps_cli(root, env)
    assert done.returncode == 0 and "unstuck: installed from requirements.txt" in done.stdout, done.stderr
    assert pyc(env, "six")  # `unstuck deps` (the image build) compiles before it returns
    write({"requirements.txt": "six==1.16.0\nunstuck-no-such-package-zz==9.9.9\n"})
    failed = deps_cli(root, env)
    assert failed.returncode == 1
    assert failed.stderr.count("\n") == 1
    assert failed.stderr.startswith("unstuck: error: Because unstuck-no-such-package-zz was not found"), failed.stderr
    assert "unstuck-no-such-package-zz" in failed.stderr
    write({"pyproject.toml": '[project]\nname = "x"\nversion = "0"\nrequires-python = ">=3.99"\n'})
    refused = deps_cli(root, env)
    assert refused.returncode == 1 and refused.stderr.startswith("unstuck: error: pyproject.toml requires Python >=3.99")
    assert "uv:" not in refused.stdout + refused.stderr  # nothing was attempted


PACKAGE = """
    [project]
    name = "proj"
    version = "0.1.0"
    dependencies = ["six==1.16.0"]
    [dependency-groups]
    dev = ["iniconfig==2.0.0"]
    [build-system]
    requires = ["uv_build>=0.9,<0.14"]
    build-backend = "uv_build"
    """


def test_a_package_project_is_editable_and_its_dev_group_installed(project):
    root, env, write = project
    write({"pyproject.toml": PACKAGE, "src/proj/__init__.py": "X = 1\n"})
    outcome = dependencies.install_now(root, env=env)
    assert outcome.ok, outcome.error
    assert in_app(root, env, "import proj, six, iniconfig; print(proj.X, six.__version__)") == "1 1.16.0"
    write({"src/proj/__init__.py": "X = 2\n"})  # an edit, no reinstall
    assert in_app(root, env, "import proj; print(proj.X)") == "2"


def test_a_project_that_cannot_be_built_still_gets_its_dependencies_and_says_how_to_not_be_a_package(project):
    root, env, write = project
    # A [build-system] whose build fails (here: no module where uv_build expects one), as a project that
    # installs with `pip install -r requirements.txt` often has.
    write({"pyproject.toml": PACKAGE, "proj_app.py": "X = 1\n"})
    outcome = dependencies.install_now(root, env=env)
    assert outcome.ok, outcome.error
    assert outcome.warning.startswith(f"the project itself ({root}) is not installed as a package: proj cannot be "
                                      "built: Expected a Python module at: src/proj/__init__.py; "), outcome.warning
    assert outcome.warning.endswith("its source is imported from APP_DIR; add `[tool.uv]` `package = false` to "
                                    "pyproject.toml if it is not meant to be installed as a package")
    assert in_app(root, env, "import proj_app, six, iniconfig; print(proj_app.X, six.__version__)") == "1 1.16.0"
    assert dependencies.pending(root, env) == []  # not retried on every start: a save of pyproject.toml retries
    assert "is not installed as a package" in project_env.read_failure(env)


def lock(root: Path) -> dict:
    subprocess.run([find_uv_bin(), "lock", "--quiet", "--project", str(root)], check=True,
                   env={**os.environ, "UV_PYTHON": sys.executable})
    return {p["name"]: p.get("version") for p in tomllib.loads((root / "uv.lock").read_text())["package"]}


def test_a_lock_installs_exactly_its_versions_and_a_stale_lock_changes_nothing(project):
    root, env, write = project
    write({"requirements.txt": "six==1.16.0\niniconfig==2.0.0\n"})
    assert dependencies.install_now(root, env=env).ok
    write({"pyproject.toml": """
        [project]
        name = "svc"
        version = "0.1.0"
        requires-python = ">=3.11"
        dependencies = ["six>=1.16"]
        """})
    locked = lock(root)
    outcome = dependencies.install_now(root, env=env)
    assert outcome.ok, outcome.error
    assert installed(env) == {"six": locked["six"]}  # exact: what the lock lacks is removed
    assert locked["six"] != "1.16.0"  # the lock's newer six replaced the one installed from requirements.txt
    stamps_before = (env / project_env.STAMPS_FILE).read_text()

    pyproject = root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"six>=1.16"', '"six>=1.16", "iniconfig"'))
    assert [p.name for p in dependencies.pending(root, env)] == ["pyproject.toml"]
    stale = dependencies.install_now(root, env=env)
    assert not stale.ok and stale.summary.startswith("The lockfile at `uv.lock` needs to be updated"), stale.summary
    assert stale.summary.endswith("run `uv lock`"), stale.summary
    assert "needs to be updated" in stale.error and "uv lock" in stale.error
    assert installed(env) == {"six": locked["six"]}
    assert (env / project_env.STAMPS_FILE).read_text() == stamps_before  # still pending: retried on the next change

    locked = lock(root)  # what `uv add iniconfig` does
    assert dependencies.install_now(root, env=env).ok
    assert installed(env) == {"six": locked["six"], "iniconfig": locked["iniconfig"]}


def test_a_failed_install_keeps_the_environment_and_stays_pending(project):
    root, env, write = project
    write({"requirements.txt": "six==1.16.0\n"})
    assert dependencies.install_now(root, env=env).ok
    write({"requirements.txt": "six==1.16.0\nunstuck-no-such-package-zz==9.9.9\n"})
    outcome = dependencies.install_now(root, env=env)
    assert not outcome.ok and outcome.summary.startswith("Because unstuck-no-such-package-zz was not found")
    assert "unstuck-no-such-package-zz" in outcome.error and "No solution found" in outcome.error
    assert in_app(root, env, "import six; print(six.__version__)") == "1.16.0"
    assert [p.name for p in dependencies.pending(root, env)] == ["requirements.txt"]


def test_an_environment_made_for_another_python_is_made_anew(project, caplog):
    root, env, write = project
    write({"requirements.txt": "six==1.16.0\n"})
    assert dependencies.install_now(root, env=env).ok
    cfg = env / "pyvenv.cfg"
    cfg.write_text("\n".join("version_info = 3.10.0" if line.startswith("version_info") else line
                             for line in cfg.read_text().splitlines()) + "\n")
    assert [p.name for p in dependencies.pending(root, env)] == ["requirements.txt"]
    with caplog.at_level(logging.INFO, logger="unstuck"):
        assert dependencies.install_now(root, env=env).ok
    remade = [r.message for r in caplog.records if "making it anew" in r.message]
    assert remade == [f"the project environment at {env} was made for Python 3.10.0 at "
                      f"{project_env.base_interpreter().parent}; making it anew for {project_env.current_interpreter()}"]
    assert project_env.made_for(env) == project_env.current_interpreter()
    assert in_app(root, env, "import six; print(six.__version__)") == "1.16.0"


def test_a_directory_that_is_not_a_virtualenv_is_left_alone(project):
    root, env, write = project
    write({"requirements.txt": "six==1.16.0\n"})
    env.mkdir()
    (env / "notes.txt").write_text("mine")
    outcome = dependencies.install_now(root, env=env)
    assert not outcome.ok and "is a directory that is not a virtualenv" in outcome.summary
    assert (env / "notes.txt").read_text() == "mine"


def test_a_package_the_runtime_has_in_another_version_is_named(project, caplog):
    root, env, write = project
    runtime_h11 = metadata.version("h11")  # uvicorn's, in unstuck's runtime
    other = "0.14.0" if runtime_h11 != "0.14.0" else "0.13.0"
    write({"requirements.txt": f"h11=={other}\n"})
    with caplog.at_level(logging.INFO, logger="unstuck"):
        assert dependencies.install_now(root, env=env).ok
    warnings = [r.message for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [f"the app imports unstuck's runtime copy of h11 {runtime_h11} (the project environment "
                        f"has {other}): the project's version is not used"]
    assert json.loads((env / project_env.STAMPS_FILE).read_text())["sources"]


# poetry.lock as `poetry lock` wrote it for shapes.POETRY_PROJECT: older versions than the newest that fit.
POETRY_LOCKED = [
    {"name": "colorama", "version": "0.4.6", "groups": ["main"], "markers": 'sys_platform == "win32"'},
    {"name": "idna", "version": "3.21", "groups": ["docs"]},
    {"name": "iniconfig", "version": "1.1.1", "groups": ["dev"]},
    {"name": "six", "version": "1.16.0", "groups": ["main"]},
]


def test_a_poetry_project_gets_its_locked_versions_and_dev_group_and_a_stale_lock_still_installs(project, caplog):
    root, env, write = project
    write({"pyproject.toml": POETRY_PROJECT, "poetry.lock": poetry_lock(POETRY_LOCKED, POETRY_PROJECT_HASH)})
    with caplog.at_level(logging.INFO, logger="unstuck"):
        outcome = dependencies.install_now(root, env=env)
    assert outcome.ok, outcome.error
    # The lock's versions, not the newest that fit; the dev group; not Windows' colorama nor the optional docs group.
    assert installed(env) == {"six": "1.16.0", "iniconfig": "1.1.1"}
    assert in_app(root, env, "import six; print(six.__version__)") == "1.16.0"
    assert "dependency set: pyproject.toml, poetry.lock (the project root has a poetry.lock: main + dev at its " \
           "versions, as `poetry install`)" in caplog.messages
    assert not [m for m in caplog.messages if "out of date" in m]
    assert dependencies.pending(root, env) == []

    caplog.clear()  # pyproject.toml edited without `poetry lock`: installed all the same, and said once
    pyproject = root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('six = ">=1.15"', 'six = ">=1.17"'))
    assert [p.name for p in dependencies.pending(root, env)] == ["pyproject.toml"]
    with caplog.at_level(logging.INFO, logger="unstuck"):
        assert dependencies.install_now(root, env=env).ok
    assert [m for m in caplog.messages if "out of date" in m] == [
        "poetry.lock is out of date with pyproject.toml (its content-hash differs; run `poetry lock`): installing "
        "at the locked versions where they still fit; not pinned: six"]
    assert installed(env)["six"] != "1.16.0" and installed(env)["iniconfig"] == "1.1.1"
