"""The one line that says the image's Python does not fit the project, and which image would."""

import sys

import pytest
from packaging.version import Version

from unstuck.project.python_requirement import check_pinned, check_spec, preflight, running

HERE = Version("3.11.2")


@pytest.mark.parametrize("spec, expected", [
    (">=3.14", "pyproject.toml requires Python >=3.14; this image runs 3.11.2: rebuild with BASE_IMAGE=python:3.14-slim"),
    ("~=3.12", "pyproject.toml requires Python ~=3.12; this image runs 3.11.2: rebuild with BASE_IMAGE=python:3.12-slim"),
    ("==3.12.*", "pyproject.toml requires Python ==3.12.*; this image runs 3.11.2: rebuild with "
                 "BASE_IMAGE=python:3.12-slim"),
    (">=3.12,<3.14", "pyproject.toml requires Python >=3.12,<3.14; this image runs 3.11.2: rebuild with "
                     "BASE_IMAGE=python:3.12-slim"),
    # Another patch of the same minor fits: the official 3.11 image carries the newest one.
    ("!=3.11.2", "pyproject.toml requires Python !=3.11.2; this image runs 3.11.2: rebuild with "
                 "BASE_IMAGE=python:3.11-slim"),
    ("==3.12.1", "pyproject.toml requires Python ==3.12.1; this image runs 3.11.2: rebuild with "
                 "BASE_IMAGE=python:3.12.1-slim"),
    ("<3.10", "pyproject.toml requires Python <3.10; this image runs 3.11.2 and unstuck needs Python 3.11 or newer: "
              "widen requires-python to allow it"),
    (">=3.12,<3.12", "pyproject.toml requires Python >=3.12,<3.12, which no Python release satisfies; "
                     "fix requires-python"),
    (">=3.x", "pyproject.toml: requires-python = '>=3.x' is not a valid version specifier; "
              "fix it, e.g. requires-python = \">=3.11\""),
])
def test_a_spec_this_python_misses_says_which_image_fits(spec, expected):
    assert check_spec("pyproject.toml", spec, HERE) == expected


@pytest.mark.parametrize("spec", [">=3.11", "==3.11.*", "~=3.11", ">=3.8,<4", "!=3.11.1", ">3.11", "", "<3.11.5"])
def test_a_spec_this_python_meets_says_nothing(spec):
    assert check_spec("pyproject.toml", spec, HERE) is None


def test_a_pre_release_interpreter_counts_as_its_release(monkeypatch):
    monkeypatch.setattr(sys, "version_info", (3, 14, 0, "candidate", 1))
    assert running() == Version("3.14.0")
    assert check_spec("pyproject.toml", ">=3.14") is None


@pytest.mark.parametrize("text, expected", [
    ("3.12\n", ".python-version asks for Python 3.12; this image runs 3.11.2: rebuild with BASE_IMAGE=python:3.12-slim"),
    ("cpython@3.13.1\n", ".python-version asks for Python cpython@3.13.1; this image runs 3.11.2: rebuild with "
                         "BASE_IMAGE=python:3.13-slim"),
    ("# pinned\n3.11.9\n", None),  # a patch pin is not enforced
    ("3.11\n", None),
    ("system\n", None),
    ("", None),
])
def test_python_version_file_names_a_minor(text, expected):
    assert check_pinned(".python-version", text, HERE) == expected


def running_minor_plus(n: int) -> str:
    return f"3.{sys.version_info.minor + n}"


def test_preflight_reads_pyproject_then_lock_then_python_version_at_the_root_and_one_level_down(tmp_path):
    assert preflight(tmp_path) is None
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / ".python-version").write_text(running_minor_plus(1) + "\n")
    assert preflight(tmp_path).startswith(f"app/.python-version asks for Python {running_minor_plus(1)}")
    (tmp_path / "uv.lock").write_text(f'version = 1\nrequires-python = ">={running_minor_plus(2)}"\n')
    assert preflight(tmp_path).startswith(f"uv.lock requires Python >={running_minor_plus(2)}")
    (tmp_path / "pyproject.toml").write_text(f'[project]\nname = "x"\nrequires-python = ">={running_minor_plus(3)}"\n')
    assert preflight(tmp_path).startswith(f"pyproject.toml requires Python >={running_minor_plus(3)}")


def test_preflight_ignores_deeper_projects_and_broken_files(tmp_path):
    (tmp_path / "libs" / "old").mkdir(parents=True)
    (tmp_path / "libs" / "old" / "pyproject.toml").write_text('[project]\nname = "x"\nrequires-python = "<3"\n')
    (tmp_path / "pyproject.toml").write_text("[project\n")
    assert preflight(tmp_path) is None
