"""The warm process's app layer in the image (app_layer.py): a save of the module that defines the app is
served by a process that imported the rest of the app ahead; a save of a module the layer holds is not,
and is served with its new code all the same."""

import pytest

from editor import SAVES
from waiting import has_text, wait_for

MAIN = """\
from fastapi import FastAPI

from app import layer_models

app = FastAPI()


@app.get("/")
def index() -> dict:
    return {"main": "MAIN", "models": layer_models.VALUE}
"""


def saved_and_served(served, path, text, save, expected):
    reloads = served.counter("reloads")
    save(path, text)
    wait_for(served.url(), has_text(200, expected), on_timeout=served.logs_tail)
    return served.wait_status("the reload is recorded", lambda s: s["counters"]["reloads"] > reloads)["last_reload"]


def layer_ready(served):
    # A layer is forked a moment after each reload, and says when it has imported what it holds.
    served.wait_status("the app layer is ready", lambda s: s.get("app_layer", {}).get("ready"), timeout=60)


@pytest.mark.parametrize("save_name", sorted(SAVES))
def test_a_save_of_the_app_module_is_served_from_the_app_layer_and_a_save_of_what_it_holds_is_not(
        start_container, save_name):
    save = SAVES[save_name]
    served = start_container(files={"main.py": MAIN.replace("MAIN", "main-0"), "layer_models.py": "VALUE = 'models-0'\n"})
    wait_for(served.url(), has_text(200, '"main":"main-0"'), on_timeout=served.logs_tail)
    main, models = served.app_dir / "main.py", served.app_dir / "layer_models.py"
    for i in (1, 2):
        layer_ready(served)
        record = saved_and_served(served, main, MAIN.replace("MAIN", f"main-{i}"), save, f'"main":"main-{i}"')
        assert record["from"] == "app layer", record
    layer_ready(served)
    record = saved_and_served(served, models, "VALUE = 'models-1'\n", save, '"models":"models-1"')
    assert record["from"] != "app layer", record
    assert '"main":"main-2"' in wait_for(served.url(), has_text(200, "models-1"))[1].text
