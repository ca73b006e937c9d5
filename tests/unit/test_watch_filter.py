from pathlib import Path

import pytest
from watchfiles import Change

from unstuck.config import DEFAULT_IGNORE, DEFAULT_WATCH
from unstuck.watching.watch_filter import WatchFilter, without_bare_dirs

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


def test_a_new_directory_is_a_change_only_with_a_watched_file_in_it(tmp_path):
    """What the app creates while it starts or serves (a cache, a SQLite file, uploads) is not a save; a new
    package (or a checkout's new tree) is."""
    for rel in (".data/cache/", "uploads/2026/", "pkg/", "deep/sub/", "env/node_modules/x/"):
        (tmp_path / rel).mkdir(parents=True)
    for rel in (".data/app.sqlite3", ".data/app.sqlite3-journal", "uploads/2026/a.png", "pkg/__init__.py",
                "deep/sub/views.py", "env/node_modules/x/index.py"):
        (tmp_path / rel).write_text("")
    here = WatchFilter([tmp_path], DEFAULT_WATCH, DEFAULT_IGNORE)
    batch = {(Change.added, str(tmp_path / name)) for name in (".data", "uploads", "pkg", "deep", "env")}
    batch |= {(Change.modified, str(tmp_path / "pkg" / "__init__.py")), (Change.deleted, str(tmp_path / "gone"))}
    assert without_bare_dirs(batch, here) == {
        (Change.added, str(tmp_path / "pkg")), (Change.added, str(tmp_path / "deep")),
        (Change.modified, str(tmp_path / "pkg" / "__init__.py")), (Change.deleted, str(tmp_path / "gone"))}
