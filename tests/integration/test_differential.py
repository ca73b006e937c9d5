"""Every answer unstuck serves is what a fresh interpreter serves for the same tree (issue 18).

For project shapes of frameworks with registries and factories (FastAPI with a lock, a Flask factory, Django
from `startproject`), a scripted sequence of saves — the app module, a leaf module, a module most others
import, a syntax error, a failure at import time, a module added, renamed and deleted — runs against the
real image. After each save the oracle is computed: a fresh interpreter in the same container imports the
tree as a worker does (unstuck's own loader, no warm process, no fork) and answers `GET /`. unstuck's answers
are then polled: each one must be the previous step's oracle (the old code still serving) or this step's,
and this step's must come. So no fast path (warm preload, spare, app layer, hand-over) may ever show
anything a fresh interpreter would not, not even for a moment.
"""

from __future__ import annotations

import os
import time

import httpx
import pytest

import fresh_interpreter
from editor import save_atomic, save_in_place
from shapes import SHAPES
from waiting import has_text, wait_for

FIRST_START_S = 300.0
STEP_S = 60.0

# Where the shape's importable top-level modules live (what its app module can `import leaf` from).
MODULE_ROOT = {"fastapi-uv-lock": "", "flask-factory": "", "django-startproject": "mysite"}


def oracle(served) -> list:
    return fresh_interpreter.serves(served, ["/"], {"host": "127.0.0.1"})["/"]


def answer(served) -> list | None:
    """What unstuck serves for `GET /`, in the oracle's terms (None: no answer, which must not happen)."""
    try:
        response = httpx.get(served.url(), headers={"accept": "application/json"}, timeout=10)
    except httpx.HTTPError:
        return None
    if response.status_code == 503:
        body = response.json()
        return ["error", body["exception"], body["message"], body["file"], body["line"]]
    return [response.status_code, response.text]


def settle_on(served, previous: list, expected: list, step: str) -> float:
    """Poll until unstuck serves `expected`; every answer before it must be `previous`. Seconds it took."""
    started = time.monotonic()
    seen = []
    while True:
        got = answer(served)
        if got == expected:
            return time.monotonic() - started
        if got != previous and got not in seen:
            seen.append(got)
        assert got == previous, (f"{step}: unstuck served {got!r}, which a fresh interpreter serves for neither "
                                 f"the tree before ({previous!r}) nor after ({expected!r})\n{served.logs_tail(60)}")
        assert time.monotonic() - started < STEP_S, (f"{step}: unstuck still serves {got!r} after {STEP_S:g} s; "
                                                     f"a fresh interpreter serves {expected!r}\n{served.logs_tail(60)}")
        time.sleep(0.02)  # the poll interval of a client that wants the new answer the moment it is there


def write(path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    save_atomic(path, text)


@pytest.mark.parametrize("name", sorted(MODULE_ROOT))
def test_every_answer_is_what_a_fresh_interpreter_serves_for_the_same_tree(start_project, tmp_path, name):
    shape = SHAPES[name]
    source = tmp_path / "source"
    source.mkdir()
    served = start_project(shape.make(source))
    wait_for(served.url(), has_text(200, shape.first), timeout=FIRST_START_S, on_timeout=served.logs_tail)
    root = served.app_dir / MODULE_ROOT[name]
    leaf, central, cold = root / "leaf.py", root / "central.py", root / "cold.py"

    def main(label: str, *modules: str) -> None:
        value = " + ' | ' + ".join([repr(label)] + [f"{module}.TEXT" for module in modules])
        shape.serve(served.app_dir, value, imports="".join(f"import {module}\n" for module in modules))

    def pause_while(change) -> None:
        """Several files changed at once (a rename and its import), read by the watcher as one batch."""
        served.container.pause()
        try:
            change()
        finally:
            served.container.unpause()

    def layer_settled() -> None:
        """At a person's pace: the app layer built after the last answer is ready (or said why it cannot be)."""
        served.wait_status("the app layer is ready or said why not",
                           lambda s: (s.get("app_layer") or {}).get("ready") or (s.get("app_layer") or {}).get("why"))

    modules = ("leaf", "central", "cold")
    steps = [
        ("modules added, the app module imports them", lambda: pause_while(lambda: (
            write(central, "TEXT = 'central v1'\n"),
            write(leaf, "import central\nTEXT = 'leaf v1 on ' + central.TEXT\n"),
            write(cold, "TEXT = 'cold v1'\n"),  # imports none of the others
            main("main v1", *modules)))),
        ("a leaf module edited", lambda: save_in_place(leaf, "import central\nTEXT = 'leaf v2 on ' + central.TEXT\n")),
        ("the module the others import edited", lambda: save_in_place(central, "TEXT = 'central v2'\n")),
        ("the app module edited", lambda: main("main v2", *modules)),
        # Not saved in the last three saves: the app layer may hold it (app_layer.HOT_FILES), and must not be
        # used for a save of it.
        ("a module not edited lately", lambda: (layer_settled(), save_in_place(cold, "TEXT = 'cold v2'\n"))),
        ("a syntax error saved", lambda: save_in_place(leaf, "import central\nTEXT = 'leaf v3' +\n")),
        ("fixed", lambda: save_in_place(leaf, "import central\nTEXT = 'leaf v3 on ' + central.TEXT\n")),
        ("a failure at import time", lambda: save_in_place(leaf, "raise RuntimeError('leaf cannot start')\n")),
        ("fixed again", lambda: save_in_place(leaf, "import central\nTEXT = 'leaf v4 on ' + central.TEXT\n")),
        ("a module added and imported", lambda: pause_while(lambda: (
            write(root / "added.py", "TEXT = 'added v1'\n"), main("main v3", *modules, "added")))),
        ("the module renamed, its import with it", lambda: pause_while(lambda: (
            os.rename(root / "added.py", root / "renamed.py"), main("main v4", *modules, "renamed")))),
        ("the module deleted while still imported", lambda: os.remove(root / "renamed.py")),
        ("its import removed", lambda: main("main v5", *modules)),
    ]
    previous = answer(served)
    for step, change in steps:
        change()
        expected = oracle(served)
        settle_on(served, previous, expected, step)
        previous = expected
    # The sequence went through each kind of answer: served, a syntax error, a failure at import, a missing module.
    assert served.status()["counters"]["failures"] >= 3
