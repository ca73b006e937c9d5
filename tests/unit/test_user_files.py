"""One answer to "is this under APP_DIR" and "is this the user's file", in every process that asks."""

import sys
import types

from unstuck.errors import traceback_text
from unstuck.generation import worker
from unstuck.user_files import is_under, is_user_file
from unstuck.watching import mounts


def test_a_sibling_whose_name_starts_with_the_directory_is_not_inside_it():
    assert not is_under("/app2/x.py", "/app")
    assert not is_under("/app2/x.py", "/app/")
    assert is_under("/app/x.py", "/app")
    assert is_under("/app/x.py", "/app/")
    assert is_under("/app", "/app")
    assert is_under("/anything", "/")


def test_the_users_file_is_under_app_dir_and_not_an_installed_package(tmp_path):
    app = tmp_path / "app"
    (app / "pkg").mkdir(parents=True)
    (tmp_path / "app2").mkdir()
    assert is_user_file(str(app / "pkg" / "mod.py"), app)
    assert not is_user_file(str(tmp_path / "app2" / "mod.py"), app)
    assert not is_user_file(str(app / ".venv" / "lib" / "site-packages" / "x.py"), app)
    assert not is_user_file("<frozen importlib._bootstrap>", app)
    assert not is_user_file("pkg/mod.py", app)  # relative: not a path this process can place


def test_a_link_to_app_dir_reaches_the_same_files(tmp_path):
    app = tmp_path / "app"
    app.mkdir()
    (tmp_path / "link").symlink_to(app)
    assert is_user_file(str(tmp_path / "link" / "main.py"), app)


def test_a_crash_is_placed_in_the_users_file_not_in_a_sibling_directory():
    lines = ["Traceback (most recent call last):",
             '  File "/app/main.py", line 3, in <module>',
             '  File "/app2/lib.py", line 9, in f',
             "ValueError: boom"]
    failure = traceback_text.parse(lines, "/app")
    assert (failure.file, failure.line) == ("main.py", 3)


def test_a_generation_counts_modules_of_a_sibling_directory_as_preloadable(monkeypatch):
    for name, path in (("users_own", "/app/users_own.py"), ("siblings", "/app2/siblings.py")):
        module = types.ModuleType(name)
        module.__file__ = path
        monkeypatch.setitem(sys.modules, name, module)
    preloadable, own = worker.modules_by_origin("/app")
    assert ("users_own", "/app/users_own.py") in [(name, path) for name, path, *_ in own]
    assert "siblings" in preloadable and "siblings" not in [name for name, *_ in own]


def test_a_mount_at_a_sibling_directory_is_not_below_app_dir():
    found = mounts.relevant_mounts([mounts.Mount("/", "ext4"), mounts.Mount("/app2", "fuse.sshfs")], "/app")
    assert [m.point for m in found] == ["/"]
