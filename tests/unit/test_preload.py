"""What the warm process imports ahead of the app: in the app's order, up to the first module that fails
outside the app, and never a half-imported package (warm_process.preload)."""

import sys

import pytest

from shapes import write
from unstuck.warm import warm_process

LIBS = {
    "fw/__init__.py": "READY = False\n",
    "fw/core.py": "x = 1\n",
    # Needs the app to have set the framework up (Django's AppRegistryNotReady, a setting read at import).
    "fw/models.py": "import fw\nimport fw.registry_helpers\nif not fw.READY:\n    raise RuntimeError('not set up')\n",
    "fw/registry_helpers.py": "y = 2\n",
    "fw/admin.py": "z = 3\n",
    "other/__init__.py": "",
}


@pytest.fixture
def libs(tmp_path, monkeypatch):
    write(tmp_path / "site", LIBS)
    monkeypatch.setattr(sys, "path", [str(tmp_path / "site"), *sys.path])
    monkeypatch.setattr(warm_process, "_full_sys_path", None)
    yield tmp_path
    for name in [n for n in sys.modules if n == "fw" or n.startswith(("fw.", "other"))]:
        del sys.modules[name]


def test_the_listed_modules_are_imported_in_order_up_to_the_first_that_fails(libs):
    loaded, failed = warm_process.preload(["fw", "fw.core", "fw.models", "fw.admin", "other"], libs / "project",
                                          stop_at_failure=True)
    assert (loaded, failed) == (2, "fw.models")
    assert "fw.core" in sys.modules and "fw.admin" not in sys.modules and "other" not in sys.modules
    # What the failed attempt imported on its way is forgotten: the fork starts from clean imports only.
    assert "fw.registry_helpers" not in sys.modules and "fw.models" not in sys.modules


def test_guesses_are_independent_a_failing_one_is_skipped(libs):
    loaded, failed = warm_process.preload(["fw.models", "fw.admin", "other"], libs / "project")
    assert (loaded, failed) == (2, "fw.models") and "other" in sys.modules and "fw.admin" in sys.modules


def test_only_the_users_tree_is_hidden_not_a_directory_whose_name_starts_like_it(libs, monkeypatch):
    # APP_DIR /…/project; a library on sys.path in /…/project2 (a sibling, not the user's tree) is preloaded.
    write(libs / "project2", {"sibling_lib.py": "v = 1\n"})
    write(libs / "project", {"users_mod.py": "v = 2\n"})
    monkeypatch.setattr(sys, "path", [str(libs / "project"), str(libs / "project2"), *sys.path])
    try:
        loaded, failed = warm_process.preload(["sibling_lib", "users_mod"], libs / "project")
        assert (loaded, failed) == (1, "users_mod") and "sibling_lib" in sys.modules
    finally:
        sys.modules.pop("sibling_lib", None)
        sys.modules.pop("users_mod", None)
