"""A Poetry project read as `poetry install` would install it: requirements, the lock's pins, the lock's hash.
Pure (no uv): tests/host/test_project_env.py installs one with the real uv."""

import textwrap
import tomllib
from pathlib import Path

import pytest

from shapes import POETRY_PROJECT, POETRY_PROJECT_HASH
from unstuck.project import poetry

# A 2024 Poetry 1.x project laid out as mealie was: caret constraints, an extra, an optional dependency
# (installed only with `--extras`), a dev group and an optional docs group.
MEALIE_LIKE = """
    [tool.poetry]
    name = "mealie"
    version = "1.0.0"
    packages = [{include = "mealie"}]

    [tool.poetry.dependencies]
    python = "^3.10"
    openai = "^1.6.1"
    uvicorn = {extras = ["standard"], version = "^0.30.0"}
    psycopg2-binary = {version = "^2.9.1", optional = true}
    tzdata = "~2024.1"
    pyhumps = "3.8.0"

    [tool.poetry.extras]
    pgsql = ["psycopg2-binary"]

    [tool.poetry.group.dev.dependencies]
    rich = "^13.5.2"
    pytest = "*"

    [tool.poetry.group.docs]
    optional = true

    [tool.poetry.group.docs.dependencies]
    mkdocs = "^1.5"

    [build-system]
    requires = ["poetry-core>=1.0.0"]
    build-backend = "poetry.core.masonry.api"
"""

# Lock format 1.x (poetry 1.1: `category`, files in [metadata]), with a package from git.
LOCK_1 = """
    [[package]]
    name = "openai"
    version = "1.30.5"
    description = ""
    category = "main"
    optional = false
    python-versions = ">=3.7.1"

    [[package]]
    name = "Rich"
    version = "13.7.1"
    description = ""
    category = "dev"
    optional = false
    python-versions = ">=3.7.0"

    [[package]]
    name = "mylib"
    version = "0.3.0"
    description = ""
    category = "main"
    optional = false
    python-versions = "*"

    [package.source]
    type = "git"
    url = "https://example.com/mylib.git"
    reference = "main"
    resolved_reference = "abc"

    [metadata]
    lock-version = "1.1"
    python-versions = "^3.10"
    content-hash = "0000"

    [metadata.files]
    openai = []
"""

# Lock format 2.1 (poetry 2.x: `groups`, `markers`), one package locked in two versions for two Pythons.
LOCK_2 = """
    [[package]]
    name = "numpy"
    version = "1.26.4"
    optional = false
    python-versions = ">=3.9"
    groups = ["main"]
    markers = "python_version < \\"3.12\\""

    [[package]]
    name = "numpy"
    version = "2.1.0"
    optional = false
    python-versions = ">=3.10"
    groups = ["main"]
    markers = "python_version >= \\"3.12\\""

    [[package]]
    name = "colorama"
    version = "0.4.6"
    optional = false
    python-versions = "*"
    groups = ["main", "dev"]
    markers = {main = "sys_platform == \\"win32\\"", dev = "sys_platform == \\"win32\\""}

    [metadata]
    lock-version = "2.1"
    python-versions = "^3.11"
    content-hash = "0000"
"""

def toml(text: str) -> dict:
    return tomllib.loads(textwrap.dedent(text))


@pytest.mark.parametrize("constraint, pep440", [
    ("^1.6.1", ">=1.6.1,<2"), ("^0.30.0", ">=0.30.0,<0.31"), ("^0.0.3", ">=0.0.3,<0.0.4"), ("^0", ">=0,<1"),
    ("~2024.1", ">=2024.1,<2024.2"), ("~1.2.3", ">=1.2.3,<1.3"), ("~1", ">=1,<2"), ("3.8.0", "==3.8.0"),
    ("1.2.*", "==1.2.*"), ("*", ""), (">= 1.2, < 2", ">=1.2,<2"), (">=1.2 <2", ">=1.2,<2"), ("~=1.4", "~=1.4"),
    ("!=1.5", "!=1.5"), ("^1.2 || ^2.0", None),
])
def test_poetry_constraints_become_pep_440_specifiers(constraint, pep440):
    assert poetry.specifier(constraint) == pep440


def test_the_main_dependencies_and_the_groups_poetry_install_installs(tmp_path):
    wanted = poetry.requirements(toml(MEALIE_LIKE), tmp_path)
    assert wanted.lines == ["openai>=1.6.1,<2", "uvicorn[standard]>=0.30.0,<0.31", "tzdata>=2024.1,<2024.2",
                            "pyhumps==3.8.0", "rich>=13.5.2,<14", "pytest"]
    assert wanted.groups == ["dev"]  # docs is optional, as psycopg2-binary is: poetry install leaves them out


def test_the_older_dev_dependencies_table_is_the_dev_group(tmp_path):
    data = toml("""
        [tool.poetry.dependencies]
        python = "^3.8"
        [tool.poetry.dev-dependencies]
        black = "^22.1"
    """)
    wanted = poetry.requirements(data, tmp_path)
    assert (wanted.lines, wanted.groups) == (["black>=22.1,<23"], ["dev"])
    assert poetry.declares(data) and not poetry.declares(toml('[tool.poetry]\nname = "x"\n'))


def test_sources_markers_and_multiple_constraints_become_requirement_lines(tmp_path):
    data = toml("""
        [tool.poetry.dependencies]
        mylib = {git = "https://example.com/mylib.git", rev = "v1", subdirectory = "py"}
        local = {path = "libs/local", develop = true}
        wheel = {path = "dist/w-1.0-py3-none-any.whl"}
        winonly = {version = "^1", markers = "sys_platform == 'win32'"}
        oldpy = {version = "^2", python = "<3.9"}
        numpy = [
            {version = "^1.26", python = "<3.12"},
            {version = "^2.0", python = ">=3.12"},
        ]
    """)
    assert poetry.requirements(data, tmp_path).lines == [
        "mylib @ git+https://example.com/mylib.git@v1#subdirectory=py",
        f"-e {tmp_path / 'libs/local'}",
        f"wheel @ {(tmp_path / 'dist/w-1.0-py3-none-any.whl').as_uri()}",
        "winonly>=1,<2 ; sys_platform == 'win32'",
        'oldpy>=2,<3 ; python_full_version < "3.9"',
        'numpy>=1.26,<2 ; python_full_version < "3.12"',
        'numpy>=2.0,<3 ; python_full_version >= "3.12"',
    ]


def test_poetry_2_reads_project_dependencies_from_the_project_table_and_its_dependency_groups(tmp_path):
    data = toml("""
        [project]
        name = "svc"
        dependencies = ["six>=1.15"]
        [tool.poetry.dependencies]
        six = {source = "private"}
        [dependency-groups]
        dev = ["pytest"]
        lint = ["ruff"]
        [tool.poetry.group.lint]
        optional = true
    """)
    wanted = poetry.requirements(data, tmp_path)
    assert wanted.lines == []  # [project]'s dependencies are read by uv from pyproject.toml itself
    assert wanted.dependency_groups == ["dev"] and wanted.groups == ["dev"]


def test_a_lock_of_format_1_pins_what_is_not_from_git():
    pins, unpinned = poetry.constraints(toml(LOCK_1), ["openai>=1.6.1,<2"])
    assert (pins, unpinned) == (["openai==1.30.5", "rich==13.7.1"], [])


def test_a_lock_of_format_2_pins_each_version_under_its_marker():
    pins, unpinned = poetry.constraints(toml(LOCK_2), [])
    assert pins == ['colorama==0.4.6', 'numpy==1.26.4 ; python_version < "3.12"',
                    'numpy==2.1.0 ; python_version >= "3.12"']
    assert unpinned == []


def test_a_package_locked_twice_without_markers_is_left_to_the_resolver():
    lock = toml(LOCK_2.replace('markers = "python_version >= \\"3.12\\""', ""))
    assert poetry.constraints(lock, []) == (["colorama==0.4.6"], ["numpy"])


def test_a_declaration_the_locked_version_does_not_fit_wins_over_the_lock():
    # pyproject.toml says openai ^2 while poetry.lock still has 1.30.5 (edited without `poetry lock`).
    assert poetry.constraints(toml(LOCK_1), ["openai>=2,<3"]) == (["rich==13.7.1"], ["openai"])


def test_the_content_hash_is_poetrys():
    data = toml(POETRY_PROJECT)
    lock = {"metadata": {"content-hash": POETRY_PROJECT_HASH}}
    assert poetry.is_fresh(data, lock)
    data["tool"]["poetry"]["dependencies"]["six"] = ">=1.16"
    assert not poetry.is_fresh(data, lock)
    data = toml(POETRY_PROJECT)
    data["tool"]["poetry"]["description"] = "edited"  # not a declaration: the lock stays fresh
    assert poetry.is_fresh(data, lock)


def test_package_mode_false_says_the_project_is_not_a_package():
    assert poetry.is_package(toml(POETRY_PROJECT)) is False
    assert poetry.is_package(toml(MEALIE_LIKE)) is None

