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


def saved_and_served(served, path, text, save, expected) -> list[str]:
    """What the processes of the reloads this save caused were made from. An in-place save may come as two
    batches (the truncation, then the text) when the writer is descheduled between them: two reloads."""
    before = served.status()["last_reload"]["gen"]
    save(path, text)
    wait_for(served.url(), has_text(200, expected), on_timeout=served.logs_tail)
    status = served.wait_status("the reload is recorded", lambda s: s["last_reload"]["gen"] > before)
    # A reload superseded before it was ready or failed has no record: say so.
    unrecorded = ["superseded"] * (status["last_reload"]["gen"] - before - sum(r["gen"] > before for r in status["reloads"]))
    return unrecorded + [r["from"] for r in status["reloads"] if r["gen"] > before]


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
    whole = []  # saves that came as one batch: served from the layer, every one
    for i in range(1, 5):
        layer_ready(served)
        made_from = saved_and_served(served, main, MAIN.replace("MAIN", f"main-{i}"), save, f'"main":"main-{i}"')
        if len(made_from) == 1:
            whole.append(made_from[0])
        else:  # split: the first of its reloads took the layer
            assert made_from[0] in ("app layer", "superseded"), made_from
        if len(whole) == 2:
            break
    assert whole == ["app layer", "app layer"]
    layer_ready(served)
    made_from = saved_and_served(served, models, "VALUE = 'models-1'\n", save, '"models":"models-1"')
    assert "app layer" not in made_from, made_from
    assert f'"main":"main-{i}"' in wait_for(served.url(), has_text(200, "models-1"))[1].text
