"""Which of the user's modules the warm process's app layer imports ahead, and when a reload may use it."""

import os

from shapes import write
from unstuck.warm import app_layer
from unstuck.reload.warm_process_client import WarmProcesses

TREE = {
    "app/__init__.py": "",
    "app/main.py": "from fastapi import FastAPI\nfrom app.api.main import router\nfrom app.core import config\n",
    "app/api/__init__.py": "",
    "app/api/main.py": "from .routes import items, users\nrouter = [items, users]\n",
    "app/api/routes/__init__.py": "",
    "app/api/routes/items.py": "from app.models import Item\n",
    "app/api/routes/users.py": "import json\n\ndef later():\n    from ...core.config import settings\n",
    "app/models.py": "import app.core.config\nclass Item: ...\n",
    "app/core/__init__.py": "",
    "app/core/config.py": "settings = {}\n",
    "app/broken.py": "def f(:\n",
}
ORDER = ["app", "app.main", "app.api", "app.api.main", "app.api.routes", "app.api.routes.items", "app.models",
         "app.core", "app.core.config", "app.api.routes.users"]


def listed(root, names=ORDER):
    def file_of(name):
        base = os.path.join(root, *name.split("."))
        return os.path.join(base, "__init__.py") if os.path.isdir(base) else base + ".py"
    return [(name, file_of(name)) for name in names]


def test_the_layer_leaves_out_the_saved_file_and_every_module_that_imports_it(tmp_path):
    write(tmp_path, TREE)
    planned = app_layer.plan(listed(tmp_path), [str(tmp_path / "app/api/routes/items.py")])
    # items is imported by api.main (relative import), which main imports: all three stay out; what they
    # import, and the modules beside them, are imported ahead, in the app's order.
    assert planned == ["app", "app.api", "app.api.routes", "app.models", "app.core", "app.core.config",
                       "app.api.routes.users"]


def test_a_saved_model_takes_out_the_routes_that_use_it_and_a_package_takes_out_its_modules(tmp_path):
    write(tmp_path, TREE)
    planned = app_layer.plan(listed(tmp_path), [str(tmp_path / "app/models.py")])
    assert planned == ["app", "app.api", "app.api.routes", "app.core", "app.core.config", "app.api.routes.users"]
    # A module imports its parent packages: a saved package __init__ takes out everything below it.
    planned = app_layer.plan(listed(tmp_path), [str(tmp_path / "app/core/__init__.py")])
    assert planned == ["app", "app.api", "app.api.routes"]


def test_an_import_inside_a_function_counts_and_the_saved_main_module_leaves_the_rest_in(tmp_path):
    write(tmp_path, TREE)
    planned = app_layer.plan(listed(tmp_path), [str(tmp_path / "app/core/config.py")])
    assert "app.api.routes.users" not in planned  # its function-level `from ...core.config import settings`
    planned = app_layer.plan(listed(tmp_path), [str(tmp_path / "app/main.py")])
    assert planned == [name for name in ORDER if name != "app.main"]


def test_a_module_whose_imports_cannot_be_read_is_assumed_to_import_everything(tmp_path):
    write(tmp_path, TREE)
    planned = app_layer.plan(listed(tmp_path, ORDER + ["app.broken"]), [str(tmp_path / "app/core/config.py")])
    assert "app.broken" not in planned
    assert "app.broken" in app_layer.plan(listed(tmp_path, ORDER + ["app.broken"]), [])


def test_a_namespace_package_with_a_broken_module_is_planned_without_the_broken_module(tmp_path):
    """`app/` without an __init__.py is a namespace package: it has no file, so it is not among the modules
    listed. A broken save of a module in it (its imports unreadable) must not end the warm process."""
    write(tmp_path, {"app/main.py": "from app import routes\n", "app/routes.py": "def broken(:\n",
                     "app/models.py": "x = 1\n"})
    names = ["app.models", "app.routes", "app.main"]
    planned = app_layer.plan(listed(tmp_path, names), [str(tmp_path / "app/routes.py")])
    assert planned == ["app.models"]


def test_the_layer_is_used_only_for_saves_of_python_files_it_does_not_hold_and_left_unchanged(tmp_path):
    write(tmp_path, TREE)
    held_files = [tmp_path / "app/models.py", tmp_path / "app/core/config.py"]
    held = {str(p): list(app_layer.stamp(str(p))) for p in held_files}  # as it comes through JSON
    main = str(tmp_path / "app/main.py")
    assert app_layer.usable(held, [("modified", main)])
    assert app_layer.usable(held, [("added", main)])  # an editor's safe write: the file moved into place
    assert not app_layer.usable(held, None)  # not caused by saves (a restart, an install)
    assert not app_layer.usable(held, [])
    assert not app_layer.usable(held, [("modified", main), ("modified", str(tmp_path / ".env"))])
    assert not app_layer.usable(held, [("modified", str(tmp_path / "app/models.py"))])
    # A held file changed since it was imported, even if the batch does not say so (saved meanwhile).
    (tmp_path / "app/core/config.py").write_text("settings = {'debug': True}\n")
    assert not app_layer.usable(held, [("modified", main)])



def test_the_layer_is_used_only_for_saves_of_modules_the_app_imported_on_its_last_run(tmp_path):
    """A file the app did not import (a new one) may be one it finds by listing a directory, such as a plugin
    folder scanned while the layer loaded the app: the layer would serve without it, a fresh interpreter with it."""
    write(tmp_path, {**TREE, "app/plugins/new_one.py": "NAME = 'new'\n"})
    held = {str(tmp_path / "app/models.py"): list(app_layer.stamp(str(tmp_path / "app/models.py")))}
    main, plugin = str(tmp_path / "app/main.py"), str(tmp_path / "app/plugins/new_one.py")
    known = {os.path.realpath(main), os.path.realpath(tmp_path / "app/models.py")}
    assert app_layer.usable(held, [("modified", main)], known=known)
    assert not app_layer.usable(held, [("added", plugin)], known=known)
    assert not app_layer.usable(held, [("modified", main), ("added", plugin)], known=known)


def test_the_hot_files_are_the_last_saved_python_files_newest_first():
    hot = app_layer.hot_after([], [("modified", "/w/a.py"), ("modified", "/w/notes.md")])
    hot = app_layer.hot_after(hot, [("modified", "/w/b.py")])
    hot = app_layer.hot_after(hot, [("modified", "/w/a.py")])
    assert hot == ["/w/a.py", "/w/b.py"]
    for name in "cde":
        hot = app_layer.hot_after(hot, [("modified", f"/w/{name}.py")])
    assert hot == ["/w/e.py", "/w/d.py", "/w/c.py"]


def test_the_app_module_list_is_rewritten_only_when_the_set_of_modules_changes(tmp_path):
    # Rewriting it has the warm process build its layer again; the same modules in another order, or recorded
    # otherwise (a generation forked from the layer imports them in the layer's order, and did not see the
    # framework start them) must not: the order and the importers of a fresh import are the ones to keep.
    warm = WarmProcesses(-1, tmp_path / "preload.txt", events=None, enabled=True)
    listing = tmp_path / "preload.txt.app"
    warm.learn_app([("a", "/w/a.py", "", True), ("b", "/w/b.py", "a", True)])
    first = listing.read_text()
    assert app_layer.read_list(str(listing)) == [("a", "/w/a.py", "", True), ("b", "/w/b.py", "a", True)]
    listing.touch()
    stamp = listing.stat().st_mtime_ns
    warm.learn_app([("b", "/w/b.py", "", False), ("a", "/w/a.py", "", True)])
    assert listing.read_text() == first and listing.stat().st_mtime_ns == stamp
    warm.learn_app([("a", "/w/a.py", "", True)])
    assert app_layer.read_list(str(listing)) == [("a", "/w/a.py", "", True)]


def test_a_list_kept_from_an_older_version_reads_as_modules_without_importers(tmp_path):
    listing = tmp_path / "preload.txt.app"
    listing.write_text("a\t/w/a.py\nb\t/w/b.py\n")
    assert app_layer.read_list(str(listing)) == [("a", "/w/a.py", "", False), ("b", "/w/b.py", "", False)]


def no_statements(name, path, is_package, known):
    return set()  # only the imports recorded at run time count here


DJANGO_LIKE = [  # (name, importer recorded at run time, whether the framework started it), in the order they started
    ("mysite", "", True),
    ("mysite.asgi", "", True),            # imported by the worker's loader
    ("polls.models", "mysite.asgi", True),  # django.setup() in asgi.py
    ("mysite.urls", "", True),            # the worker's URLconf check
    ("blog.urls", "mysite.urls", True),   # include("blog.urls")
    ("blog.views", "blog.urls", False),   # `from blog import views` in blog/urls.py
    ("blog.forms", "blog.views", False),
    ("shop.hooks", "mysite.urls", True),  # a registry's discovery, which fills in the order it imports
    ("shop.views", "mysite.urls", False),
]


def django_like():
    return [(name, f"/w/{name.replace('.', '/')}.py", importer, framework) for name, importer, framework in DJANGO_LIKE]


def test_an_import_started_at_run_time_makes_its_importer_leave_the_layer_with_it():
    # A saved model takes out the entry module whose django.setup() imported it, though no statement says so.
    planned = app_layer.plan(django_like(), ["/w/polls/models.py"], read_imports=no_statements)
    assert "polls.models" not in planned and "mysite.asgi" not in planned


def test_once_a_module_is_left_out_the_imports_the_framework_made_after_it_are_left_to_the_worker():
    # A saved view takes out its URLconf and the root URLconf that included it. What the framework imported
    # after those (a registry's discovery) is left for the worker to import in the framework's order; what
    # import statements imported is still taken, and so is everything before the first module left out.
    planned = app_layer.plan(django_like(), ["/w/blog/forms.py"], read_imports=no_statements)
    assert planned == ["mysite", "mysite.asgi", "polls.models", "shop.views"]


def test_nothing_hot_takes_every_module_in_the_order_the_imports_started():
    assert app_layer.plan(django_like(), [], read_imports=no_statements) == [name for name, _, _ in DJANGO_LIKE]


def test_a_frameworks_bootstrap_is_not_the_hot_guess_before_any_save_and_an_app_module_is(tmp_path):
    write(tmp_path, {"mysite/asgi.py": "from django.core.asgi import get_asgi_application\n"
                                       "application = get_asgi_application()\n",
                     "app/main.py": "from fastapi import FastAPI\napp = FastAPI()\n"})
    modules = [("mysite.asgi", str(tmp_path / "mysite/asgi.py")), ("app.main", str(tmp_path / "app/main.py"))]
    assert app_layer.entry_files(modules, "mysite.asgi") == []
    assert app_layer.entry_files(modules, "app.main") == [str(tmp_path / "app/main.py")]


def test_a_central_file_among_the_recent_saves_is_left_in_and_the_leaves_are_left_out(tmp_path):
    # A service: twenty routers, each importing the models; main includes them all.
    tree = {"svc/__init__.py": "", "svc/models.py": "class Item: ...\n", "svc/routes/__init__.py": "",
            "svc/main.py": "".join(f"from svc.routes import r{i}\n" for i in range(20))}
    tree.update({f"svc/routes/r{i}.py": "from svc.models import Item\n" for i in range(20)})
    write(tmp_path, tree)
    order = ["svc", "svc.main", "svc.routes", "svc.models"] + [f"svc.routes.r{i}" for i in range(20)]
    modules = listed(tmp_path, order)
    leaf, other, models = (str(tmp_path / p) for p in ("svc/routes/r3.py", "svc/routes/r7.py", "svc/models.py"))
    # A router was saved last, the models before it: leaving the models out too would leave out every router,
    # so the layer holds them, and leaves the router out (its next save is served from the layer).
    assert app_layer.left_out(modules, [leaf, models]) == [leaf]
    # The newest save is always left out, central or not: it is the likeliest to be saved again.
    assert app_layer.left_out(modules, [models, leaf]) == [models, leaf]
    assert len(app_layer.plan(modules, [leaf])) == len(order) - 2  # the router and main
    # Leaves are left out however many there are.
    assert app_layer.left_out(modules, [other, leaf]) == [other, leaf]
    # A save that changes what a file imports is planned from what it imports now.
    (tmp_path / "svc/routes/r3.py").write_text("import json\n")
    (tmp_path / "svc/models.py").write_text("from svc.routes import r3\nclass Item: ...\n")
    assert "svc.models" not in app_layer.plan(modules, [leaf])


# mealie's shape: a package of routers whose __init__ imports them all, the saved one among them; every router
# imports that package (it is its parent), and most a shared base module beside them.
ROUTERS = {
    "svc/__init__.py": "",
    "svc/main.py": "from svc.routes import router\nfrom svc.routes.media import media_router\n",
    "svc/routes/__init__.py": "from . import admin, about, users, plugins\nrouter = [admin, about, users]\n",
    "svc/routes/_base.py": "BASE = 1\n",
    "svc/routes/admin.py": "from svc.routes._base import BASE\n",
    "svc/routes/about.py": "from svc.routes._base import BASE\n",
    "svc/routes/users.py": "from svc.routes._base import BASE\nfrom .extra import more\n",
    "svc/routes/extra/__init__.py": "from svc.routes import about\n",
    "svc/routes/extra/more.py": "X = 1\n",
    "svc/routes/plugins.py": "from svc.routes import router\n",
    "svc/routes/media.py": "media_router = []\n",
    "svc/models.py": "class Item: ...\n",
}
ROUTER_ORDER = [("svc", "", 0), ("svc.main", "", 0), ("svc.models", "svc.main", 0), ("svc.routes", "svc.main", 0),
                ("svc.routes.admin", "svc.routes", 0), ("svc.routes._base", "svc.routes.admin", 0),
                ("svc.routes.about", "svc.routes", 0), ("svc.routes.users", "svc.routes", 0),
                ("svc.routes.extra", "svc.routes.users", 0), ("svc.routes.extra.more", "svc.routes.extra", 0),
                ("svc.routes.plugins", "svc.routes", 0), ("svc.routes.media", "svc.main", 0)]


def test_a_router_left_out_only_because_its_package_imports_the_saved_one_is_imported_at_the_stop(tmp_path):
    write(tmp_path, ROUTERS)
    modules = [(name, path, importer, framework) for (name, importer, framework), (_, path) in
               zip(ROUTER_ORDER, listed(tmp_path, [entry[0] for entry in ROUTER_ORDER]))]
    about = str(tmp_path / "svc/routes/about.py")
    planned = app_layer.plan(modules, [about])
    assert planned == ["svc", "svc.models"]  # every router imports svc.routes, which imports about.py
    at = dict(app_layer.at_stop(modules, [about]))
    # Once the layer's load stops inside about.py's import (svc.main and svc.routes running), the routers beside
    # it and the base module can be imported there: none of their import statements leads to about.py ...
    assert list(at) == ["svc.routes.admin", "svc.routes._base", "svc.routes.extra.more", "svc.routes.media"]
    assert at["svc.routes.admin"] == {"svc.routes"}  # ... once their package is running
    # extra/more.py's package imports about.py: importing more.py there would start extra's __init__, and import
    # about.py in the layer: it waits for svc.routes.extra too (never running at that stop).
    assert at["svc.routes.extra.more"] == {"svc.routes", "svc.routes.extra"}
    # Not taken: extra (it imports about), users (`from .extra import more` runs extra's __init__), plugins (it
    # takes `router` from the running package, a name set only after about's import), about and its importers.
    assert not {"svc.routes.extra", "svc.routes.users", "svc.routes.plugins", "svc.routes.about", "svc.routes",
                "svc.main"} & set(at)


def test_a_module_the_framework_imported_after_a_left_out_one_is_not_imported_at_the_stop(tmp_path):
    write(tmp_path, ROUTERS)
    order = [(name, importer, 1 if name == "svc.routes.media" else framework)
             for name, importer, framework in ROUTER_ORDER]
    modules = [(name, path, importer, framework) for (name, importer, framework), (_, path) in
               zip(order, listed(tmp_path, [entry[0] for entry in order]))]
    at = dict(app_layer.at_stop(modules, [str(tmp_path / "svc/routes/about.py")]))
    assert "svc.routes.media" not in at and "svc.routes.admin" in at
