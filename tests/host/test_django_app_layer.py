"""A Django project gets an app layer, and what it serves from it is what a fresh interpreter serves (issue 18).

Django imports most of a project by name, not by import statements: `django.setup()` (run by `asgi.py`)
imports every app's models and admin, `include("polls.urls")` the app's URLconf. Replayed in the order
`sys.modules` keeps (the order imports *finished*), the layer imported `polls.models` before anything had
set Django up, failed with AppRegistryNotReady, and every save re-imported the whole project. The layer now
replays the imports in the order they started (`asgi.py` first, which sets Django up as in a fresh
process), knows who imported what at run time, and leaves the framework's later imports to the worker.
The real reload server and warm process on this machine, no Docker.
"""

import os
import subprocess
import sys

import httpx
import pytest

from reload_loop import drive, free_port, reload_server, served_alone
from repo import REPO
from unstuck.reload import events as ev


FILES = {
    "manage.py": 'import os\nos.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")\n',
    "mysite/__init__.py": "",
    "mysite/settings.py": (
        'SECRET_KEY = "test"\nDEBUG = False\nALLOWED_HOSTS = ["*"]\nROOT_URLCONF = "mysite.urls"\n'
        'INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "polls"]\n'
        'DATABASES = {}\nUSE_TZ = True\n'),
    "mysite/asgi.py": (
        'import os\nfrom django.core.asgi import get_asgi_application\n'
        'os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")\n'
        'application = get_asgi_application()\n'),
    "mysite/urls.py": 'from django.urls import include, path\nurlpatterns = [path("", include("polls.urls"))]\n',
    "polls/__init__.py": "",
    "polls/apps.py": 'from django.apps import AppConfig\n\nclass PollsConfig(AppConfig):\n    name = "polls"\n',
    "polls/models.py": (
        'from django.db import models\n\nclass Question(models.Model):\n    text = models.CharField(max_length=200)\n\n'
        '    class Meta:\n        verbose_name = "MODEL"\n'),
    "polls/urls.py": 'from django.urls import path\nfrom polls import views\nurlpatterns = [path("", views.index)]\n',
    "polls/views.py": (
        'from django.apps import apps\nfrom django.http import HttpResponse\nfrom polls.models import Question\n\n'
        'def text():\n    return "VIEW " + str(Question._meta.verbose_name) + " " + ",".join(a.label for a in apps.get_app_configs())\n\n'
        'def index(request):\n    return HttpResponse(text())\n'),
}

FRESH = ('import os, django\nos.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")\ndjango.setup()\n'
         'from polls import views\nprint(views.text())\n')


@pytest.fixture
def server(tmp_path, monkeypatch):
    project = tmp_path / "project"
    for name, text in FILES.items():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(text.replace("VIEW", "v1").replace("MODEL", "question"))
    env = {"PYTHONPATH": str(REPO / "entrypoint"), "APP_DIR": str(project), "HOST": "127.0.0.1",
           "PORT": str(free_port()), "UNSTUCK_RUN_DIR": str(tmp_path / "run"), "UNSTUCK_GRACE": "0.5",
           "LOG_LEVEL": "warning"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("APP_MODULE", raising=False)
    monkeypatch.delenv("DJANGO_SETTINGS_MODULE", raising=False)
    (tmp_path / "run").mkdir(mode=0o700)
    yield from reload_server(tmp_path / "run" / "preload.txt")


def fresh_interpreter_serves(app_dir) -> str:
    env = {**os.environ}
    return subprocess.run([sys.executable, "-c", FRESH], cwd=app_dir, env=env, capture_output=True, text=True,
                          check=True, timeout=60).stdout.strip()


def test_a_django_view_saved_is_served_from_the_app_layer_as_a_fresh_interpreter_serves_it(server):
    app_dir = server.settings.app_dir
    url = f"http://127.0.0.1:{server.settings.port}/"

    def layer_settled() -> bool:
        return bool(server.app_layer.get("ready") or server.app_layer.get("why"))

    def save(name: str, view: str, model: str, reloads: int) -> dict:
        (app_dir / name).write_text(FILES[name].replace("VIEW", view).replace("MODEL", model))
        server.feed(ev.Changes(frozenset({("modified", name)})))
        drive(server, lambda: served_alone(server, reloads), f"{name} saved is served", timeout=60.0)
        last = server.machine.snapshot()["last_reload"]
        assert last["ok"], last
        assert httpx.get(url, timeout=10).text == fresh_interpreter_serves(app_dir)
        return last

    drive(server, lambda: server.warm.current is not None, "the warm process is ready", timeout=60.0)
    server.act(server.machine.start())
    drive(server, lambda: served_alone(server), "served", timeout=60.0)
    assert httpx.get(url, timeout=10).text == fresh_interpreter_serves(app_dir) == "v1 question contenttypes,auth,polls"

    # The first save of a view: the layer built at start holds the view (nothing was hot), so a spare serves it.
    drive(server, layer_settled, "the first app layer", timeout=60.0)
    assert server.app_layer.get("ready"), f"no app layer for a Django project: {server.app_layer}"
    save("polls/views.py", "v2", "question", reloads=2)
    # The next one: the layer built since leaves the view and the URLconfs that import it out, and has Django set up.
    drive(server, layer_settled, "the app layer without the view", timeout=60.0)
    assert server.app_layer.get("ready"), f"no app layer once a view was saved: {server.app_layer}"
    assert save("polls/views.py", "v3", "question", reloads=3)["from"] == "app layer"
    # A model most of the project imports: the layer holds it (django.setup() imported it), so a spare serves
    # it, imported afresh, and the view sees the new model.
    drive(server, layer_settled, "the app layer again", timeout=60.0)
    assert save("polls/models.py", "v3", "poll", reloads=4)["from"] != "app layer"
    assert httpx.get(url, timeout=10).text == "v3 poll contenttypes,auth,polls"
    # With the model among the recent saves, a layer leaving it out would leave out asgi.py, whose setup imported
    # it, and with it all it sets up: the layer leaves out only the newest save, and the view comes from it again.
    save("polls/views.py", "v4", "poll", reloads=5)
    drive(server, layer_settled, "the app layer after the model", timeout=60.0)
    assert server.app_layer.get("ready"), f"no app layer once a model was saved: {server.app_layer}"
    assert save("polls/views.py", "v5", "poll", reloads=6)["from"] == "app layer"
    assert server.machine.counters["fast_path_wrong"] == 0 and server.machine.counters["failures"] == 0
