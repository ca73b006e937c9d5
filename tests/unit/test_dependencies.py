"""What needs installing, how, and whether it was installed already: no uv run here (tests/host does that)."""

import platform
import textwrap
import tomllib
from pathlib import Path

import pytest

from shapes import poetry_lock, write
from unstuck.project import dependencies, poetry, project_env


def rel(paths, root):
    return [Path(p).relative_to(root).as_posix() for p in paths]


VIRTUAL = """
    [project]
    name = "svc"
    version = "0.1.0"
    dependencies = ["six==1.16.0"]
    [dependency-groups]
    dev = ["iniconfig==2.0.0"]
"""
PACKAGE = VIRTUAL + """
    [build-system]
    requires = ["uv_build"]
    build-backend = "uv_build"
"""


HEROKU_DJANGO = {  # a Wagtail-demo-like site: the production set at the root, the dev set beside it
    "requirements.txt": "-r requirements/production.txt\n",
    "requirements/base.txt": "django==5.2.19\nwagtail\n",
    "requirements/production.txt": "-r base.txt\nuwsgi==2.0.31\n",
    "requirements/development.txt": "-r base.txt  # what we use locally\nruff\n",
    "tests/fixtures/old/requirements.txt": "fastapi==0.65.2\n",
    "docs/requirements.txt": "sphinx\n",
    "manage.py": "",
}


def requirement_args(plan):
    return [plan.args[i + 1] for i, a in enumerate(plan.args) if a == "-r"]


def test_the_dev_set_is_chosen_over_the_production_set_and_nested_files_are_left_out(tmp_path):
    write(tmp_path, HEROKU_DJANGO)
    plan = dependencies.plan(tmp_path, tmp_path / "env", names=())
    assert plan.args[:2] == ["pip", "install"]
    assert plan.args[plan.args.index("--python") + 1] == str(tmp_path / "env/bin/python")
    assert requirement_args(plan) == [str(tmp_path / "requirements/development.txt")]
    assert rel(plan.sources, tmp_path) == ["requirements/development.txt"]
    assert plan.project_args is None
    chosen, left_out = plan.selection.describe(tmp_path)
    assert chosen == ("dependency set: requirements/development.txt "
                      "(the dev set in preference to the production set)")
    assert left_out == ("left out: requirements.txt, docs/requirements.txt, requirements/production.txt, "
                        "tests/fixtures/old/requirements.txt (not the chosen set or below the project root; "
                        "set UNSTUCK_REQUIREMENTS to choose)")


@pytest.mark.parametrize("dev_name", dependencies.dependency_set.DEV_FILES)
def test_every_dev_file_name_is_a_dev_set(tmp_path, dev_name):
    write(tmp_path, {"requirements.txt": "fastapi\n", dev_name: "-r ../requirements.txt\npytest\n"
                     if "/" in dev_name else "-r requirements.txt\npytest\n"})
    plan = dependencies.plan(tmp_path, tmp_path / "env", names=())
    assert rel(plan.sources, tmp_path) == [dev_name]  # it includes requirements.txt
    assert plan.selection.left_out == []


def test_a_dev_file_that_does_not_include_the_base_is_installed_with_it(tmp_path):
    write(tmp_path, {"requirements.txt": "fastapi\n", "requirements-dev.txt": "pytest\n",
                     "requirements-docs.txt": "sphinx\n"})
    plan = dependencies.plan(tmp_path, tmp_path / "env", names=())
    assert rel(plan.sources, tmp_path) == ["requirements-dev.txt", "requirements.txt"]
    assert rel(plan.selection.left_out, tmp_path) == ["requirements-docs.txt"]


def test_a_test_fixture_deeper_in_the_tree_is_never_installed(tmp_path):
    write(tmp_path, {"requirements.txt": "fastapi\n", "tests/fixtures/old/requirements.txt": "fastapi==0.65.2\n",
                     "examples/vendored/pyproject.toml": VIRTUAL})
    plan = dependencies.plan(tmp_path, tmp_path / "env", names=())
    assert requirement_args(plan) == [str(tmp_path / "requirements.txt")]
    assert "--group" not in plan.args
    assert rel(plan.selection.left_out, tmp_path) == ["examples/vendored/pyproject.toml",
                                                      "tests/fixtures/old/requirements.txt"]
    assert plan.selection.describe(tmp_path)[0] == "dependency set: requirements.txt (the project root's declarations (no dev set))"


def test_the_project_root_is_the_shallowest_directory_that_declares_anything(tmp_path):
    # The sample's layout: APP_DIR=/workspace, the project mounted at /workspace/app.
    write(tmp_path, {"app/requirements.txt": "fastapi\n", "app/docs/requirements.txt": "sphinx\n",
                     "app/main.py": "", "pyproject.toml": "[tool.ruff]\nline-length = 100\n"})
    plan = dependencies.plan(tmp_path, tmp_path / "env", names=())
    assert rel(plan.sources, tmp_path) == ["app/requirements.txt"]
    assert rel(plan.selection.left_out, tmp_path) == ["app/docs/requirements.txt"]
    assert dependencies.plan(tmp_path / "empty", tmp_path / "env", names=()) is None


def test_unstuck_requirements_names_the_files(tmp_path):
    write(tmp_path, HEROKU_DJANGO)
    plan = dependencies.plan(tmp_path, tmp_path / "env", names=("requirements/production.txt", "docs/requirements.txt"))
    assert requirement_args(plan) == [str(tmp_path / "requirements/production.txt"), str(tmp_path / "docs/requirements.txt")]
    assert plan.selection.describe(tmp_path)[0].endswith("(UNSTUCK_REQUIREMENTS names them)")
    assert "requirements/development.txt" in plan.selection.describe(tmp_path)[1]


def test_the_setting_is_read_from_the_environment(tmp_path, monkeypatch):
    write(tmp_path, HEROKU_DJANGO)
    monkeypatch.setenv("UNSTUCK_REQUIREMENTS", " requirements/base.txt , ")
    assert rel(dependencies.plan(tmp_path, tmp_path / "env").sources, tmp_path) == ["requirements/base.txt"]


def test_a_virtual_pyproject_installs_its_dependencies_dev_extra_and_dev_group(tmp_path):
    write(tmp_path, {"pyproject.toml": VIRTUAL + '    [project.optional-dependencies]\n    dev = ["pytest"]\n'})
    plan = dependencies.plan(tmp_path, tmp_path / "env", names=())
    pyproject = str(tmp_path / "pyproject.toml")
    assert plan.args[-6:] == ["-r", pyproject, "--extra", "dev", "--group", f"{pyproject}:dev"]
    assert plan.project_args is None


def test_pyproject_and_the_dev_requirements_beside_it_go_together(tmp_path):
    write(tmp_path, {"pyproject.toml": VIRTUAL, "requirements-dev.txt": "pytest\n"})
    plan = dependencies.plan(tmp_path, tmp_path / "env", names=())
    assert rel(plan.sources, tmp_path) == ["requirements-dev.txt", "pyproject.toml"]


@pytest.mark.parametrize("text, editable", [
    (PACKAGE, True),  # [build-system]: a package
    (VIRTUAL + "\n[tool.uv]\npackage = true\n", True),  # uv's switch, without a build system
    (PACKAGE + "\n[tool.uv]\npackage = false\n", False),  # uv's switch wins over [build-system]
    (VIRTUAL, False),
])
def test_an_installable_project_is_installed_editable_in_a_step_after_its_dependencies(tmp_path, text, editable):
    write(tmp_path, {"svc/pyproject.toml": text, "svc/requirements.txt": "six\n"})
    plan = dependencies.plan(tmp_path, tmp_path / "env", names=())
    assert "-e" not in plan.args and "-r" in plan.args  # the dependencies alone first
    if editable:
        assert plan.project_args[-2:] == ["-e", str(tmp_path / "svc")]
        assert plan.project_args[:-2] == plan.args  # resolved with the dependencies: consistent versions
    else:
        assert plan.project_args is None


def test_a_pyproject_of_tool_settings_only_installs_nothing(tmp_path):
    write(tmp_path, {"pyproject.toml": "[tool.ruff]\nline-length = 120\n"})
    assert dependencies.plan(tmp_path, tmp_path / "env", names=()) is None


def test_a_named_pyproject_of_tool_settings_only_installs_nothing(tmp_path):
    write(tmp_path, {"pyproject.toml": "[tool.ruff]\nline-length = 120\n", "requirements.txt": "six\n"})
    assert dependencies.plan(tmp_path, tmp_path / "env", names=("pyproject.toml",)) is None


def test_a_broken_pyproject_is_handed_to_uv_which_says_what_is_wrong(tmp_path):
    write(tmp_path, {"pyproject.toml": "[project\n"})
    assert dependencies.plan(tmp_path, tmp_path / "env", names=()).args[-2:] == ["-r", str(tmp_path / "pyproject.toml")]


def test_a_lock_pins_the_whole_environment_and_the_project_is_synced_after_its_dependencies(tmp_path):
    write(tmp_path, {"pyproject.toml": PACKAGE, "uv.lock": "version = 1\n", "requirements-dev.txt": "six\n",
                     "libs/a/pyproject.toml": VIRTUAL, "other/uv.lock": "", "other/pyproject.toml": VIRTUAL})
    plan = dependencies.plan(tmp_path, tmp_path / "env", names=())
    assert plan.args[:3] == ["sync", "--locked", "--no-progress"] and plan.args[-1] == "--no-install-project"
    assert plan.args[plan.args.index("--project") + 1] == str(tmp_path)
    assert plan.args[plan.args.index("--python") + 1] == str(tmp_path / "env/bin/python")
    assert plan.project_args == plan.args[:-1]
    assert rel(plan.sources, tmp_path) == ["pyproject.toml", "uv.lock"]
    assert rel(plan.ignored, tmp_path) == ["requirements-dev.txt", "other/pyproject.toml", "other/uv.lock",
                                           "libs/a/pyproject.toml"]
    assert "uv.lock pins the environment" in plan.selection.describe(tmp_path)[1]


def test_a_workspace_includes_its_members(tmp_path):
    root = PACKAGE + '\n[tool.uv.workspace]\nmembers = ["packages/*"]\nexclude = ["packages/old"]\n'
    write(tmp_path, {"pyproject.toml": root, "packages/a/pyproject.toml": PACKAGE.replace("svc", "a"),
                     "packages/old/pyproject.toml": VIRTUAL, "uv.lock": ""})
    plan = dependencies.plan(tmp_path, tmp_path / "env", names=())
    assert rel(plan.sources, tmp_path) == ["pyproject.toml", "packages/a/pyproject.toml", "uv.lock"]
    assert plan.args[-1] == "--no-install-workspace"
    (tmp_path / "uv.lock").unlink()
    plan = dependencies.plan(tmp_path, tmp_path / "env", names=())
    assert plan.project_args[-4:] == ["-e", str(tmp_path), "-e", str(tmp_path / "packages/a")]


def test_the_digest_of_a_pyproject_ignores_tool_settings(tmp_path):
    path = tmp_path / "pyproject.toml"
    path.write_text(VIRTUAL.replace("    ", ""))
    before = dependencies.digest(path)
    path.write_text(path.read_text() + "\n[tool.ruff]\nline-length = 99\n")
    assert dependencies.digest(path) == before
    path.write_text(path.read_text().replace("six==1.16.0", "six==1.17.0"))
    assert dependencies.digest(path) != before


def test_the_digest_of_requirements_covers_the_files_they_include(tmp_path):
    write(tmp_path, {"requirements.txt": "-r base.txt\n-c constraints.txt\n", "base.txt": "six\n",
                     "constraints.txt": "six<2\n"})
    before = dependencies.digest(tmp_path / "requirements.txt")
    (tmp_path / "base.txt").write_text("six\niniconfig\n")
    middle = dependencies.digest(tmp_path / "requirements.txt")
    (tmp_path / "constraints.txt").write_text("six<1.17\n")
    assert len({before, middle, dependencies.digest(tmp_path / "requirements.txt")}) == 3


def fake_env(path: Path, version: str | None = None) -> Path:
    """A directory whose pyvenv.cfg says which interpreter made it (what uv writes)."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "pyvenv.cfg").write_text(f"home = {project_env.base_interpreter().parent}\nimplementation = CPython\n"
                                     f"version_info = {version or platform.python_version()}\n")
    return path


def stamp_all(root: Path, env: Path) -> None:
    plan = dependencies.plan(root, env, names=())
    project_env.write_stamps(env, {"interpreter": project_env.current_interpreter(),
                                   "sources": {str(p.relative_to(root)): dependencies.digest(p) for p in plan.sources}})


def test_nothing_is_pending_once_stamped_and_a_changed_file_is(tmp_path):
    root, env = tmp_path / "project", fake_env(tmp_path / "env")
    write(root, {"requirements.txt": "six\n", "pyproject.toml": VIRTUAL})
    assert rel(dependencies.pending(root, env), root) == ["requirements.txt", "pyproject.toml"]
    stamp_all(root, env)
    assert dependencies.pending(root, env) == []
    (root / "requirements.txt").write_text("six\niniconfig\n")
    assert rel(dependencies.pending(root, env), root) == ["requirements.txt"]


def test_everything_is_pending_for_an_environment_made_for_another_python(tmp_path):
    root, env = tmp_path / "project", fake_env(tmp_path / "env")
    write(root, {"requirements.txt": "six\n", "pyproject.toml": VIRTUAL})
    stamp_all(root, env)
    fake_env(env, version="3.10.0")
    assert rel(dependencies.pending(root, env), root) == ["requirements.txt", "pyproject.toml"]


def test_nothing_is_installed_while_the_python_does_not_fit(tmp_path):
    root, env = tmp_path / "project", fake_env(tmp_path / "env")
    write(root, {"pyproject.toml": VIRTUAL.replace('version = "0.1.0"', 'requires-python = ">=3.99"')})
    assert dependencies.pending(root, env) == []
    outcome = dependencies.install_now(root, env=env)
    assert not outcome.ok and "requires Python >=3.99" in outcome.summary


def test_dependency_files_trigger_an_install_check():
    assert all(dependencies.is_dependency_file(f"/w/{name}") for name in
               ["requirements.txt", "requirements-dev.txt", "dev-requirements.txt", "requirements/base.txt",
                "pyproject.toml", "uv.lock", ".python-version"])
    assert not any(dependencies.is_dependency_file(f"/w/{name}") for name in ["main.py", "constraints.txt"])


POETRY = """
    [tool.poetry]
    name = "svc"
    version = "0.1.0"
    package-mode = false

    [tool.poetry.dependencies]
    python = "^3.11"
    openai = "^1.6"

    [tool.poetry.group.dev.dependencies]
    rich = "^13.5"

    [tool.poetry.group.test.dependencies]
    pytest = "*"
"""
POETRY_LOCKED = [{"name": "openai", "version": "1.30.5", "groups": ["main"]},
                 {"name": "rich", "version": "13.7.1", "groups": ["dev"]}]


def poetry_project(root, pyproject=POETRY, fresh=True, **more):
    digest = poetry.content_hash(tomllib.loads(textwrap.dedent(pyproject))) if fresh else "stale"
    return write(root, {"pyproject.toml": pyproject, "poetry.lock": poetry_lock(POETRY_LOCKED, digest), **more})


def test_a_poetry_lock_installs_what_poetry_install_does_at_the_locked_versions(tmp_path):
    poetry_project(tmp_path, **{"requirements.txt": "openai\n", "docs/requirements.txt": "sphinx\n"})
    env = tmp_path / "env"
    plan = dependencies.plan(tmp_path, env, names=())
    assert plan.args[:2] == ["pip", "install"]
    assert requirement_args(plan) == [str(env / dependencies.POETRY_REQUIREMENTS)]
    assert plan.args[plan.args.index("--constraint") + 1] == str(env / dependencies.POETRY_CONSTRAINTS)
    assert plan.generated == {env / dependencies.POETRY_REQUIREMENTS: "openai>=1.6,<2\nrich>=13.5,<14\npytest\n",
                              env / dependencies.POETRY_CONSTRAINTS: "openai==1.30.5\nrich==13.7.1\n"}
    assert plan.notes == [] and plan.project_args is None  # package-mode = false
    assert rel(plan.sources, tmp_path) == ["pyproject.toml", "poetry.lock"]
    chosen, left_out = plan.selection.describe(tmp_path)
    assert chosen == ("dependency set: pyproject.toml, poetry.lock (the project root has a poetry.lock: "
                      "main + dev + test at its versions, as `poetry install`)")
    assert left_out.startswith("left out: requirements.txt, docs/requirements.txt (poetry.lock pins the environment")


POETRY_CORE = """
    [build-system]
    requires = ["poetry-core"]
    build-backend = "poetry.core.masonry.api"
"""


def test_a_poetry_package_is_installed_editable_with_the_locks_constraints(tmp_path):
    poetry_project(tmp_path, POETRY.replace("package-mode = false", "") + POETRY_CORE)
    plan = dependencies.plan(tmp_path, tmp_path / "env", names=())
    assert plan.project_args[-2:] == ["-e", str(tmp_path)] and plan.project_args[:-2] == plan.args
    assert "--constraint" in plan.project_args


def test_poetrys_package_mode_false_wins_over_its_build_system(tmp_path):
    poetry_project(tmp_path, POETRY + POETRY_CORE)
    assert dependencies.plan(tmp_path, tmp_path / "env", names=()).project_args is None


def test_a_poetry_lock_out_of_date_still_installs_and_says_so(tmp_path):
    poetry_project(tmp_path, POETRY.replace('openai = "^1.6"', 'openai = "^2.0"'), fresh=False)
    plan = dependencies.plan(tmp_path, tmp_path / "env", names=())
    assert plan.notes == ["poetry.lock is out of date with pyproject.toml (its content-hash differs; run "
                          "`poetry lock`): installing at the locked versions where they still fit; not pinned: openai"]
    assert plan.generated[tmp_path / "env" / dependencies.POETRY_CONSTRAINTS] == "rich==13.7.1\n"


def test_a_poetry_project_without_a_lock_installs_its_declarations_unpinned(tmp_path):
    write(tmp_path, {"pyproject.toml": POETRY})
    plan = dependencies.plan(tmp_path, tmp_path / "env", names=())
    assert "--constraint" not in plan.args and requirement_args(plan) == [
        str(tmp_path / "env" / dependencies.POETRY_REQUIREMENTS)]
    assert plan.selection.describe(tmp_path)[0].endswith(
        "pyproject.toml: its [tool.poetry] dependencies and groups, unpinned (no poetry.lock))")


def test_unstuck_requirements_can_name_a_poetry_lock(tmp_path):
    poetry_project(tmp_path, **{"requirements-dev.txt": "six\n"})
    plan = dependencies.plan(tmp_path, tmp_path / "env", names=("poetry.lock",))
    assert rel(plan.sources, tmp_path) == ["pyproject.toml", "poetry.lock"] and "--constraint" in plan.args
    assert plan.selection.describe(tmp_path)[0].endswith(
        "(UNSTUCK_REQUIREMENTS names them: main + dev + test at poetry.lock's versions)")


def test_a_poetry_declaration_or_lock_saved_is_pending_and_other_poetry_settings_are_not(tmp_path):
    root, env = tmp_path / "project", fake_env(tmp_path / "env")
    poetry_project(root)
    stamp_all(root, env)
    assert dependencies.pending(root, env) == []
    pyproject = root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('version = "0.1.0"', 'version = "0.2.0"'))
    assert dependencies.pending(root, env) == []
    pyproject.write_text(pyproject.read_text().replace('rich = "^13.5"', 'rich = "^14"'))
    assert rel(dependencies.pending(root, env), root) == ["pyproject.toml"]
    stamp_all(root, env)
    lock = root / "poetry.lock"
    lock.write_text(lock.read_text().replace("13.7.1", "13.8.0"))
    assert rel(dependencies.pending(root, env), root) == ["poetry.lock"]
    assert dependencies.is_dependency_file("/w/poetry.lock")
