"""The app layer's load of the app, stopped at the saved module (paused_load.py): where it stops, that the module is
then read as it is after the stop, and what the layer counts as read besides its modules."""

import importlib
import os
import sys

import pytest

from shapes import write
from unstuck.warm import paused_load


class Seen:
    """A finder that only notes the modules it is asked for (as import_order's recorder does)."""

    def __init__(self) -> None:
        self.names = []

    def find_spec(self, name, path=None, target=None):
        self.names.append(name)
        return None


@pytest.fixture
def tree(tmp_path, monkeypatch):
    app = write(tmp_path / "app", {"entry_mod.py": "import before_mod\nimport hot_mod\nimport after_mod\n",
                                   "before_mod.py": "", "hot_mod.py": "VALUE = 'old'\n", "after_mod.py": ""})
    monkeypatch.syspath_prepend(str(app))
    names = ("entry_mod", "before_mod", "hot_mod", "after_mod", "local_settings_mod")
    yield app
    for name in names:
        sys.modules.pop(name, None)


def test_the_load_stops_before_the_hot_module_is_read_and_then_reads_it_as_it_is_then(tree, monkeypatch):
    seen = Seen()
    monkeypatch.setattr(sys, "meta_path", [seen, *sys.meta_path])
    stops = []

    def stop(name):
        stops.append((name, sorted(m for m in ("entry_mod", "before_mod", "hot_mod", "after_mod") if m in sys.modules)))
        (tree / "hot_mod.py").write_text("VALUE = 'saved during the stop'\n")  # a save while the layer waits
        importlib.invalidate_caches()

    loaded, stopped = paused_load.load_until(lambda: importlib.import_module("entry_mod"), {"hot_mod"}, stop)
    assert stopped and stops == [("hot_mod", ["before_mod", "entry_mod"])]  # entry_mod: its import in progress
    assert sys.modules["hot_mod"].VALUE == "saved during the stop"
    assert "after_mod" in sys.modules and loaded is sys.modules["entry_mod"]
    # The finders after the stop's are still asked for the stopped module: it does not change the list importlib
    # is going through (import_order's recorder would miss who started that import).
    assert "hot_mod" in seen.names
    assert not any(isinstance(finder, paused_load.StopBefore) for finder in sys.meta_path)


def test_a_load_that_imports_no_hot_module_does_not_stop(tree):
    loaded, stopped = paused_load.load_until(lambda: importlib.import_module("entry_mod"), {"elsewhere"},
                                             lambda name: pytest.fail(f"stopped at {name}"))
    assert not stopped and loaded is sys.modules["entry_mod"]


def test_what_the_layer_read_counts_a_py_file_it_opened_and_where_a_module_it_did_not_find_would_be(tree):
    (tree / "settings_file.py").write_text("NAME = 'x'\n")
    read = paused_load.FilesRead(tree)
    try:
        with open(tree / "settings_file.py") as f:  # Flask's config.from_pyfile
            exec(f.read(), {})
        with pytest.raises(ImportError):
            import local_settings_mod  # noqa: F401 - an optional module, not there
        (tree / "written.py").write_text("")  # written, not read: not counted
    finally:
        read.stop()
        read.remove()
    with open(tree / "after_mod.py") as f:  # after it stopped recording
        f.read()
    paths = read.paths()
    assert os.path.realpath(tree / "settings_file.py") in paths
    assert os.path.realpath(tree / "local_settings_mod.py") in paths
    assert os.path.realpath(tree / "local_settings_mod" / "__init__.py") in paths
    assert os.path.realpath(tree / "written.py") not in paths
    assert os.path.realpath(tree / "after_mod.py") not in paths
    assert read not in sys.meta_path


def test_the_sources_unstucks_discovery_reads_to_find_the_app_are_not_counted_as_read(tree):
    """Discovery reads main.py to find the app in it (no APP_MODULE); the app itself does not read it: were it
    counted, the layer would hold main.py, the file most often saved, and never serve its saves."""
    from unstuck.app import discovery

    (tree / "main.py").write_text("from fastapi import FastAPI\n\napp = FastAPI()\n")
    read = paused_load.FilesRead(tree)
    try:
        found = discovery.resolve("", tree, {})
        with open(tree / "after_mod.py") as f:  # the app's own read, for contrast
            f.read()
    finally:
        read.stop()
        read.remove()
    assert found.import_string == "main:app"
    assert os.path.realpath(tree / "main.py") not in read.paths()
    assert os.path.realpath(tree / "after_mod.py") in read.paths()
