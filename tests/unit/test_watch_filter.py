from pathlib import Path

import pytest
from watchfiles import Change

from unstuck.config import DEFAULT_IGNORE, DEFAULT_WATCH
from unstuck.watch_filter import WatchFilter

ROOT = Path("/workspace")
flt = WatchFilter([ROOT], DEFAULT_WATCH, DEFAULT_IGNORE)


@pytest.mark.parametrize("rel", ["app/main.py", "app/templates/index.html", ".env", "app/settings.toml"])
def test_source_files_trigger(rel):
    assert flt(Change.modified, f"/workspace/{rel}")


@pytest.mark.parametrize(
    "rel",
    ["app/.venv/lib/x.py", "venv/lib/site.py", "app/__pycache__/main.cpython-311.pyc", ".git/index",
     "node_modules/a/index.py", "app/server.log", "app/.main.py.swp", "app/main.py~", "app/4913", "app/data.csv"],
)
def test_noise_does_not_trigger(rel):
    assert not flt(Change.modified, f"/workspace/{rel}")


def test_root_path_itself_is_not_matched_against_ignores():
    inside_venv_named_root = WatchFilter([Path("/srv/venv")], DEFAULT_WATCH, DEFAULT_IGNORE)
    assert inside_venv_named_root(Change.modified, "/srv/venv/app/main.py")


def test_a_new_directory_counts_but_not_an_ignored_one(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "node_modules").mkdir()
    here = WatchFilter([tmp_path], DEFAULT_WATCH, DEFAULT_IGNORE)
    assert here(Change.added, str(tmp_path / "pkg"))
    assert not here(Change.added, str(tmp_path / "node_modules"))
    assert not here(Change.modified, str(tmp_path / "pkg"))
