import importlib
import sys

import pytest

from unstuck import failure


@pytest.fixture
def project(tmp_path, monkeypatch):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in [m for m in sys.modules if m == "pkg" or m.startswith("pkg.")]:
        del sys.modules[name]


def failure_of(project, source):
    (project / "pkg" / "mod.py").write_text(source)
    importlib.invalidate_caches()
    with pytest.raises(BaseException) as info:
        importlib.import_module("pkg.mod")
    return failure.from_exception(info.value, "import", project)


def test_syntax_error_points_at_file_and_line(project):
    f = failure_of(project, "x = 1\ndef broken(:\n    pass\n")
    assert (f.exc_type, f.file, f.line) == ("SyntaxError", "pkg/mod.py", 2)
    assert f.headline() == "SyntaxError: invalid syntax (pkg/mod.py:2)"
    assert "def broken(:" in f.traceback


def test_missing_import_points_at_the_import_line(project):
    f = failure_of(project, "import os\nimport no_such_module_here\n")
    assert (f.exc_type, f.file, f.line) == ("ModuleNotFoundError", "pkg/mod.py", 2)
    assert "no_such_module_here" in f.message


def test_exception_traceback_starts_in_user_code(project):
    f = failure_of(project, "def f():\n    raise RuntimeError('boom')\n\nf()\n")
    assert (f.exc_type, f.message, f.file, f.line) == ("RuntimeError", "boom", "pkg/mod.py", 2)
    assert "importlib" not in f.traceback
    assert f.traceback.splitlines()[1].strip().startswith(f'File "{project}/pkg/mod.py", line 4')


def test_round_trips_through_dict(project):
    f = failure_of(project, "raise ValueError('v')\n")
    assert failure.Failure.from_dict(f.to_dict()) == f
