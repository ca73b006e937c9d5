"""The order in which imports started, and who started each (import_order.py): what the app layer replays."""

import sys

import pytest

from shapes import write
from unstuck.warm import import_order


@pytest.fixture
def recorded(tmp_path, monkeypatch):
    """A user's tree whose entry module has a framework (outside the tree) import a module by name, as
    django.setup() does; the recorder installed for it, and removed after."""
    app_dir, site = tmp_path / "app_dir", tmp_path / "site"
    write(app_dir, {
        "proj/__init__.py": "",
        "proj/entry.py": "import framework\nframework.setup('proj.models')\nimport proj.late\n",
        "proj/models.py": "from proj import util\n",
        "proj/util.py": "import importlib\nimportlib.import_module('proj.dynamic')\n",
        "proj/dynamic.py": "",
        "proj/late.py": "",
    })
    write(site, {"framework.py": "import importlib\n\ndef setup(name):\n    importlib.import_module(name)\n"})
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.syspath_prepend(str(app_dir))
    meta_path, started = list(sys.meta_path), dict(import_order._started)
    import_order.install(app_dir)
    import proj.entry  # noqa: F401
    yield
    sys.meta_path[:] = meta_path
    import_order._started.clear()
    import_order._started.update(started)
    for name in [name for name in sys.modules if name == "framework" or name.startswith("proj")]:
        del sys.modules[name]


def test_imports_are_in_the_order_they_started_not_the_order_they_finished(recorded):
    order = {name: import_order.started(name)[0] for name in ("proj", "proj.entry", "proj.models", "proj.util",
                                                               "proj.dynamic", "proj.late")}
    assert sorted(order, key=order.get) == ["proj", "proj.entry", "proj.models", "proj.util", "proj.dynamic",
                                            "proj.late"]
    # sys.modules keeps the order they finished: the entry module after what it imported.
    finished = [name for name in sys.modules if name.startswith("proj.")]
    assert finished.index("proj.entry") > finished.index("proj.models")


def test_each_import_names_the_users_module_that_started_it_and_whether_the_framework_did(recorded):
    assert import_order.started("proj.models")[1:] == ("proj.entry", True)  # framework.setup('proj.models')
    assert import_order.started("proj.util")[1:] == ("proj.models", False)  # an import statement
    assert import_order.started("proj.dynamic")[1:] == ("proj.util", False)  # the user's own importlib call
    assert import_order.started("proj.late")[1:] == ("proj.entry", False)


def test_the_layer_replaying_an_import_keeps_what_the_worker_recorded(recorded):
    import_order.replaying("proj.entry", "someone", False)  # recorded already: kept as it was
    assert import_order.started("proj.entry")[1:] == ("", True)
    import_order.replaying("proj.other", "proj.entry", True)
    assert import_order.started("proj.other")[1:] == ("proj.entry", True)
