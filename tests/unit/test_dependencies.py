"""What needs installing, how, and whether it was installed already: no uv run here (tests/host does that)."""

import platform
from pathlib import Path

import pytest

from shapes import write
from unstuck import dependencies, project_env


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


def test_finds_dependency_files_but_not_inside_virtualenvs_or_vcs(tmp_path):
    write(tmp_path, {p: "" for p in [
        "app/requirements.txt", "requirements-dev.txt", "pyproject.toml", "uv.lock", ".python-version",
        ".venv/lib/pkg/requirements.txt", "venv/requirements.txt", "node_modules/x/pyproject.toml",
        ".git/requirements.txt", "app/main.py", "app/constraints.txt"]})
    found = rel(dependencies.find(tmp_path), tmp_path)
    assert found == [".python-version", "app/requirements.txt", "pyproject.toml", "requirements-dev.txt", "uv.lock"]


def test_requirement_files_are_installed_together_in_one_resolution(tmp_path):
    write(tmp_path, {"app/requirements.txt": "six\n", "requirements-dev.txt": "iniconfig\n"})
    plan = dependencies.plan(tmp_path, tmp_path / "env")
    assert plan.args[:2] == ["pip", "install"]
    assert plan.args[plan.args.index("--python") + 1] == str(tmp_path / "env/bin/python")
    assert plan.args[-4:] == ["-r", str(tmp_path / "app/requirements.txt"), "-r", str(tmp_path / "requirements-dev.txt")]
    assert "--compile-bytecode" not in plan.args  # compiled in the background after an install in place
    assert rel(plan.sources, tmp_path) == ["app/requirements.txt", "requirements-dev.txt"]


def test_a_virtual_pyproject_installs_its_dependencies_and_dev_group(tmp_path):
    write(tmp_path, {"pyproject.toml": VIRTUAL})
    plan = dependencies.plan(tmp_path, tmp_path / "env")
    pyproject = str(tmp_path / "pyproject.toml")
    assert plan.args[-4:] == ["-r", pyproject, "--group", f"{pyproject}:dev"]


@pytest.mark.parametrize("text, editable", [
    (PACKAGE, True),  # [build-system]: a package
    (VIRTUAL + "\n[tool.uv]\npackage = true\n", True),  # uv's switch, without a build system
    (PACKAGE + "\n[tool.uv]\npackage = false\n", False),  # uv's switch wins over [build-system]
    (VIRTUAL, False),
])
def test_an_installable_project_is_installed_editable(tmp_path, text, editable):
    write(tmp_path, {"svc/pyproject.toml": text})
    args = dependencies.plan(tmp_path, tmp_path / "env").args
    assert (["-e", str(tmp_path / "svc")] == args[-4:-2]) is editable
    assert ("-r" in args) is not editable


def test_a_pyproject_of_tool_settings_only_installs_nothing(tmp_path):
    write(tmp_path, {"pyproject.toml": "[tool.ruff]\nline-length = 120\n"})
    assert dependencies.plan(tmp_path, tmp_path / "env") is None


def test_a_broken_pyproject_is_handed_to_uv_which_says_what_is_wrong(tmp_path):
    write(tmp_path, {"pyproject.toml": "[project\n"})
    assert dependencies.plan(tmp_path, tmp_path / "env").args[-2:] == ["-r", str(tmp_path / "pyproject.toml")]


def test_a_lock_pins_the_whole_environment_and_requirement_files_are_left_out(tmp_path):
    write(tmp_path, {"pyproject.toml": VIRTUAL, "uv.lock": "version = 1\n", "app/requirements.txt": "six\n",
                     "libs/a/pyproject.toml": VIRTUAL, "other/uv.lock": "", "other/pyproject.toml": VIRTUAL})
    plan = dependencies.plan(tmp_path, tmp_path / "env")
    assert plan.args[:3] == ["sync", "--locked", "--no-progress"]
    assert plan.args[plan.args.index("--project") + 1] == str(tmp_path)
    assert plan.args[plan.args.index("--python") + 1] == str(tmp_path / "env/bin/python")
    assert "--inexact" not in plan.args
    assert set(rel(plan.sources, tmp_path)) == {"uv.lock", "pyproject.toml", "libs/a/pyproject.toml",
                                                "other/pyproject.toml"}
    assert rel(plan.ignored, tmp_path) == ["app/requirements.txt", "other/uv.lock"]
    assert "uv.lock pins the environment: not installing app/requirements.txt" in plan.note


def test_the_shallowest_lock_wins_and_a_lock_without_its_pyproject_does_not_count(tmp_path):
    write(tmp_path, {"app/pyproject.toml": VIRTUAL, "app/uv.lock": "", "app/sub/pyproject.toml": VIRTUAL,
                     "app/sub/uv.lock": "", "uv.lock": "", "requirements.txt": "six\n"})
    plan = dependencies.plan(tmp_path, tmp_path / "env")
    assert plan.args[0] == "sync" and plan.args[plan.args.index("--project") + 1] == str(tmp_path / "app")


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
    plan = dependencies.plan(root, env)
    project_env.write_stamps(env, {"interpreter": project_env.current_interpreter(),
                                   "sources": {str(p.relative_to(root)): dependencies.digest(p) for p in plan.sources}})


def test_nothing_is_pending_once_stamped_and_a_changed_file_is(tmp_path):
    root, env = tmp_path / "project", fake_env(tmp_path / "env")
    write(root, {"app/requirements.txt": "six\n", "pyproject.toml": VIRTUAL})
    assert rel(dependencies.pending(root, env), root) == ["app/requirements.txt", "pyproject.toml"]
    stamp_all(root, env)
    assert dependencies.pending(root, env) == []
    (root / "app/requirements.txt").write_text("six\niniconfig\n")
    assert rel(dependencies.pending(root, env), root) == ["app/requirements.txt"]


def test_everything_is_pending_for_an_environment_made_for_another_python(tmp_path):
    root, env = tmp_path / "project", fake_env(tmp_path / "env")
    write(root, {"app/requirements.txt": "six\n", "pyproject.toml": VIRTUAL})
    stamp_all(root, env)
    fake_env(env, version="3.10.0")
    assert rel(dependencies.pending(root, env), root) == ["app/requirements.txt", "pyproject.toml"]


def test_nothing_is_installed_while_the_python_does_not_fit(tmp_path):
    root, env = tmp_path / "project", fake_env(tmp_path / "env")
    write(root, {"pyproject.toml": VIRTUAL.replace('version = "0.1.0"', 'requires-python = ">=3.99"')})
    assert dependencies.pending(root, env) == []
    outcome = dependencies.install_now(root, env=env)
    assert not outcome.ok and "requires Python >=3.99" in outcome.summary


def test_uv_errors_are_picked_out_of_its_output():
    lines = ["Using Python 3.11.2 environment at: /env", "  × No solution found when resolving dependencies:",
             "  ╰─▶ Because nope was not found in the package registry, your requirements are unsatisfiable."]
    assert dependencies.error_lines(lines) == lines[1:]
    lines = ["Resolved 4 packages in 178ms", "error: The lockfile at `uv.lock` needs to be updated, but `--locked` "
             "was provided.", "hint: To update the lockfile, run `uv lock`."]
    assert dependencies.error_lines(lines) == lines[1:]
    assert dependencies.error_lines(["a", "b", "c", "d"]) == ["b", "c", "d"]


def test_dependency_files_trigger_an_install_check():
    assert all(dependencies.is_dependency_file(f"/w/{name}") for name in
               ["requirements.txt", "requirements-dev.txt", "pyproject.toml", "uv.lock", ".python-version"])
    assert not any(dependencies.is_dependency_file(f"/w/{name}") for name in ["main.py", "constraints.txt"])
