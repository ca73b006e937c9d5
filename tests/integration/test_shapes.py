"""Projects of every shape (tests/shapes.py), mounted at /workspace in the image for any project, with
APP_MODULE unset: the app is found as its framework's CLI finds it, its own dependencies are installed at
start, the first page is served, an edit is served, a broken save is a 503 naming the file, the fix is
served, a view that raises answers unstuck's 500 page (or the framework's own debug page), and a dependency added the way the project declares them is installed in place and importable."""

import time

import pytest

from editor import save_in_place
from repo import RECOVERIES
from shapes import DEPENDENCY, SHAPES
from waiting import has_text, wait_for

FIRST_START_S = 300.0  # the project's framework is installed first (uv, from PyPI)
RELOAD_S = 60.0


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_a_project_is_found_served_edited_broken_fixed_and_extended(start_project, tmp_path, name):
    shape = SHAPES[name]
    source = tmp_path / "source"
    source.mkdir()
    started = time.monotonic()
    served = start_project(shape.make(source))
    wait_for(served.url(), has_text(200, shape.first), timeout=FIRST_START_S, on_timeout=served.logs_tail)
    RECOVERIES.append((f"{name}: container start -> first 200 (its dependencies installed first)",
                       time.monotonic() - started))
    status = served.wait_state("serving")
    assert status["app"]["import"] == shape.discovered, status["app"]

    if name == "django-startproject":
        # Served as runserver serves it with DEBUG: the admin's CSS too.
        wait_for(served.url("/static/admin/css/base.css"), has_text(200, "DJANGO Admin styles"),
                 on_timeout=served.logs_tail)

    edits = []
    for i in range(3):
        saved = time.monotonic()
        shape.serve(served.app_dir, repr(f"edit {i} of {name}"))
        wait_for(served.url(), has_text(200, f"edit {i} of {name}"), timeout=RELOAD_S, on_timeout=served.logs_tail)
        edits.append(time.monotonic() - saved)
    RECOVERIES.append((f"{name}: edit -> served, median of 3", sorted(edits)[1]))

    main = served.app_dir / shape.main
    good = main.read_text()
    save_in_place(main, good + "\ndef broken(:\n")
    _, page = wait_for(served.url(), has_text(503, "SyntaxError", shape.main), timeout=RELOAD_S,
                       on_timeout=served.logs_tail)
    assert page.headers["retry-after"] == "1"
    fixed = time.monotonic()
    shape.serve(served.app_dir, repr(f"fixed {name}"))
    wait_for(served.url(), has_text(200, f"fixed {name}"), timeout=RELOAD_S, on_timeout=served.logs_tail)
    RECOVERIES.append((f"{name}: broken save fixed -> served", time.monotonic() - fixed))

    # A view that raises while handling a request: unstuck's page names the file, unless the framework
    # shows the exception on a debug page of its own, which is left alone.
    shape.serve(served.app_dir, "{}['missing_key']")
    expected = ("missing_key",) if shape.debug_page else ("KeyError: 'missing_key'", f"({shape.main}:")
    _, failed = wait_for(served.url(), has_text(500, *expected), timeout=RELOAD_S, on_timeout=served.logs_tail)
    assert ("x-unstuck-error" in failed.headers) is not shape.debug_page, failed.text[:2000]

    # A dependency declared the project's way is installed in place, then used by the next edit.
    installs = served.wait_state("serving")["counters"]["installs"]
    added = time.monotonic()
    shape.add_dependency(served.app_dir)
    served.wait_status("the new dependency is installed", lambda s: s["counters"]["installs"] > installs
                       and not s["installing"] and s["dependencies_error"] is None, timeout=FIRST_START_S)
    RECOVERIES.append((f"{name}: dependency added -> installed in place", time.monotonic() - added))
    package, version = DEPENDENCY
    shape.serve(served.app_dir, f"'{package} ' + {package}.__version__", imports=f"import {package}\n")
    wait_for(served.url(), has_text(200, f"{package} {version}"), timeout=RELOAD_S, on_timeout=served.logs_tail)
