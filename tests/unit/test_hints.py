import pytest

from unstuck.project import project_env
from unstuck.errors.hints import for_missing_module


@pytest.fixture
def env(tmp_path_factory, monkeypatch):
    """The project environment the hint reads the last install's failure from."""
    path = tmp_path_factory.mktemp("env")
    monkeypatch.setenv("UNSTUCK_PROJECT_ENV", str(path))
    monkeypatch.delenv("UNSTUCK_REQUIREMENTS", raising=False)
    return path


def write(root, files: dict[str, str]):
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


PYPROJECT = '[project]\nname = "x"\nversion = "1"\ndependencies = ["fastapi>=0.100"]\n'


def test_undeclared_package_goes_into_pyproject_when_it_has_a_project_table(tmp_path):
    write(tmp_path, {"pyproject.toml": PYPROJECT, "app/requirements.txt": "fastapi\n"})
    assert for_missing_module("requests", tmp_path) == (
        "add 'requests' to [project].dependencies in pyproject.toml (or `uv add requests`); "
        "unstuck installs it in place")


def test_undeclared_package_goes_into_requirements_txt_otherwise(tmp_path):
    write(tmp_path, {"pyproject.toml": "[tool.ruff]\nline-length = 100\n", "app/requirements.txt": "fastapi\n",
                     "app/requirements-dev.txt": "pytest\n"})
    assert for_missing_module("requests", tmp_path) == "add 'requests' to app/requirements.txt; unstuck installs it in place"


def test_pyproject_with_dynamic_dependencies_is_not_where_to_add_them(tmp_path):
    write(tmp_path, {"pyproject.toml": '[project]\nname = "x"\ndynamic = ["dependencies"]\n',
                     "requirements.txt": "fastapi\n"})
    assert for_missing_module("requests", tmp_path).startswith("add 'requests' to requirements.txt;")


def test_without_dependency_files_one_is_created_beside_the_failing_code(tmp_path):
    assert for_missing_module("requests", tmp_path, near="app/main.py") == (
        "create app/requirements.txt with the line 'requests'; unstuck installs it in place")
    assert for_missing_module("requests", tmp_path, near="main.py").startswith("create requirements.txt ")


@pytest.mark.parametrize("module, distribution", [("yaml", "PyYAML"), ("PIL", "pillow"), ("cv2", "opencv-python"),
                                                  ("sklearn", "scikit-learn"), ("bs4", "beautifulsoup4")])
def test_import_names_are_mapped_to_distribution_names(tmp_path, module, distribution):
    write(tmp_path, {"requirements.txt": "fastapi\n"})
    assert for_missing_module(f"{module}.sub", tmp_path).startswith(f"add {distribution!r} to requirements.txt")


@pytest.mark.parametrize("line", ["PyYAML==6.0.1", "pyyaml>=6 ; python_version >= '3.8'", "pyYAML", "PyYAML[extra]",
                                  "pyyaml==6.0 --hash=sha256:abcd  # pinned", "pyyaml  # the YAML parser",
                                  "pyyaml \\\n  ==6.0"])
def test_declared_but_missing_points_at_the_install_error(tmp_path, line):
    write(tmp_path, {"app/requirements.txt": f"# deps\n-r other.txt\n--index-url https://x\n{line}\n"})
    hint = for_missing_module("yaml", tmp_path)
    assert hint == ("'pyyaml' is declared in app/requirements.txt but not installed: "
                    "see the install error in `unstuck status` or the log"), hint


def test_declared_in_pyproject_dependencies(tmp_path):
    write(tmp_path, {"pyproject.toml": PYPROJECT.replace('"fastapi>=0.100"', '"fastapi", "Requests>=2"')})
    assert for_missing_module("requests", tmp_path).startswith("'requests' is declared in pyproject.toml but not installed")


def test_declared_in_the_dev_group_counts_as_declared_and_other_groups_are_said_to_be_left_out(tmp_path, env):
    write(tmp_path, {"pyproject.toml": PYPROJECT + '[dependency-groups]\ndev = ["pytest>=8", {include-group = "x"}]\n'
                                                   'docs = ["sphinx"]\n'})
    assert for_missing_module("pytest", tmp_path) == (
        "'pytest' is declared in pyproject.toml but not installed: see the install error in `unstuck status` or the log")
    assert for_missing_module("sphinx", tmp_path) == (
        "'sphinx' is declared in pyproject.toml [dependency-groups] docs; unstuck installs only the dev group: "
        "move it to [dependency-groups] dev")


HEROKU_DJANGO = {"requirements.txt": "-r requirements/production.txt\n", "requirements/base.txt": "django==5.2\n",
                 "requirements/production.txt": "-r base.txt\nuwsgi\n", "requirements/development.txt": "-r base.txt\n",
                 "tests/fixtures/old/requirements.txt": "fastapi==0.65.2\n"}


def test_declared_and_the_install_failed_says_why_instead_of_asking_to_declare_it(tmp_path, env):
    write(tmp_path, HEROKU_DJANGO)
    project_env.write_failure(env, "uwsgi 2.0.31 cannot be built: no C compiler in this image")
    assert for_missing_module("django", tmp_path) == (
        "'django' is declared in requirements/base.txt but the install failed: "
        "uwsgi 2.0.31 cannot be built: no C compiler in this image")


def test_declared_only_in_a_file_left_out_of_the_set_says_so(tmp_path, env):
    write(tmp_path, HEROKU_DJANGO)
    assert for_missing_module("uwsgi", tmp_path) == (
        "'uwsgi' is declared in requirements/production.txt, which is not installed (the dependency set is "
        "requirements/development.txt): declare it there, or name the files to install in UNSTUCK_REQUIREMENTS")
    assert for_missing_module("requests", tmp_path).startswith("add 'requests' to requirements/development.txt;")


def test_a_locked_project_is_told_to_uv_add_not_to_edit_pyproject(tmp_path, env):
    write(tmp_path, {"pyproject.toml": PYPROJECT, "uv.lock": "version = 1\n"})
    assert for_missing_module("requests", tmp_path) == (
        "add 'requests' with `uv add requests` (it updates pyproject.toml and uv.lock; an edit of pyproject.toml "
        "alone needs `uv lock` too); unstuck installs it in place")


POETRY = """[tool.poetry]
name = "x"
[tool.poetry.dependencies]
python = "^3.10"
openai = "^1.6"
[tool.poetry.group.dev.dependencies]
rich = "^13"
"""


def test_a_poetry_project_declares_its_main_and_dev_dependencies_and_is_told_to_poetry_add(tmp_path, env):
    write(tmp_path, {"pyproject.toml": POETRY, "poetry.lock": "[metadata]\n"})
    project_env.write_failure(env, "uv pip install failed")
    assert for_missing_module("rich", tmp_path) == (
        "'rich' is declared in pyproject.toml but the install failed: uv pip install failed")
    assert for_missing_module("openai", tmp_path).startswith("'openai' is declared in pyproject.toml")
    assert for_missing_module("requests", tmp_path) == (
        "add 'requests' with `poetry add requests` (it updates pyproject.toml and poetry.lock); unstuck installs "
        "it in place")


def test_a_module_of_the_users_own_package_gets_no_install_hint(tmp_path):
    write(tmp_path, {"app/__init__.py": "", "app/main.py": "", "requirements.txt": "fastapi\n"})
    hint = for_missing_module("app.modelz", tmp_path)
    assert hint == f"no module 'app.modelz' under {tmp_path}: neither app/modelz.py nor app/modelz/ exists; check the import"


def test_a_module_of_the_users_imported_from_the_wrong_root_says_how_to_import_it(tmp_path):
    write(tmp_path, {"app/__init__.py": "", "app/models.py": "", "app/.venv/lib/util.py": "", "requirements.txt": ""})
    assert for_missing_module("models", tmp_path) == (
        f"there is app/models.py, but imports are resolved from {tmp_path}: import it as 'app.models' "
        "(or with a relative import inside app/)")
    assert for_missing_module("util", tmp_path).startswith("add 'util'")  # virtualenvs are not the user's code


def test_a_standard_library_module_gets_no_hint(tmp_path):
    assert for_missing_module("tkinter", tmp_path) is None


def test_the_hint_reaches_the_failure_of_a_real_import(project):
    (project.root / "requirements.txt").write_text("fastapi\n")
    f = project.failure_of("import os\nimport requests_not_declared_pkg\n")
    assert f.hint == "add 'requests_not_declared_pkg' to requirements.txt; unstuck installs it in place"


def test_the_hint_follows_an_explicit_cause(project):
    f = project.failure_of("try:\n    import yaml_missing_zz\nexcept ImportError as exc:\n"
                           "    raise RuntimeError('install it') from exc\n")
    assert f.exc_type == "RuntimeError" and "'yaml_missing_zz'" in f.hint
    g = project.failure_of("try:\n    import yaml_missing_zz\nexcept ImportError:\n    raise RuntimeError('other')\n")
    assert g.hint is None  # an import that failed and was handled is not the cause
