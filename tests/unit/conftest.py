"""Failures from real exceptions: a temp project (the APP_DIR) with a package `pkg`, and a temp library
directory outside it, both importable."""

import importlib
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from unstuck.errors import failure


@dataclass
class Project:
    root: Path  # APP_DIR
    lib: Path  # stands for site-packages: importable, not the user's

    def failure_of(self, source: str, phase: str = "import", **lib_modules: str) -> failure.Failure:
        """Write pkg/mod.py (and library modules), import it, return the Failure it raises."""
        for name, text in lib_modules.items():
            (self.lib / f"{name}.py").write_text(text)
        (self.root / "pkg" / "mod.py").write_text(source)
        importlib.invalidate_caches()
        with pytest.raises(BaseException) as info:
            importlib.import_module("pkg.mod")
        return failure.from_exception(info.value, phase, self.root)


@pytest.fixture
def project(tmp_path, monkeypatch):
    root, lib = tmp_path / "project", tmp_path / "lib"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_text("")
    lib.mkdir()
    monkeypatch.syspath_prepend(str(lib))
    monkeypatch.syspath_prepend(str(root))
    before = set(sys.modules)
    yield Project(root, lib)
    for name in set(sys.modules) - before:
        del sys.modules[name]
