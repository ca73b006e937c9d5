"""`make test-realworld`: on three large public projects, every answer unstuck serves is what a fresh interpreter
serves for the same tree (issue 18, goal 4).

For each project (tests/realworld_projects.py: a Wagtail site, a Django project with 45 INSTALLED_APPS, a FastAPI
service of 367 modules), a scripted sequence of saves at a person's pace: a view edited twice, the module most
others import edited, a SyntaxError saved and fixed, an ImportError saved and fixed, a module added, renamed and
deleted. After each save the oracle is computed: a fresh interpreter in the same container imports the tree as a
worker does (unstuck's own loader, no warm process, no fork) and answers each of the project's URLs. unstuck's
answers are then polled: each must be the previous step's oracle (the old code still serving) or this step's, and
this step's must come. Bodies are compared after masking CSRF tokens, timestamps and long hex ids.
"""

from __future__ import annotations

import os
import time

import httpx
import pytest

import fresh_interpreter
from realworld_projects import HEADERS, PROJECTS, central_block, leaf_block, normalise, with_block

PACE_S = 1.5  # a person's pace: each save this long after the previous answer


def oracle(served, project) -> dict:
    return {url: comparable(answer) for url, answer in fresh_interpreter.serves(served, list(project.urls), HEADERS).items()}


def comparable(answer: list) -> list:
    if answer[0] == "error":
        return answer
    return [answer[0], normalise(answer[1])]


def served_answer(client: httpx.Client, served, url: str) -> list | None:
    """What unstuck serves for `url`, in the oracle's terms (None: no answer, which must not happen)."""
    try:
        response = client.get(served.url(url), headers=HEADERS)
    except httpx.HTTPError:
        return None
    if response.status_code == 503 and response.headers.get("content-type", "").startswith("application/json"):
        try:
            body = response.json()
            return ["error", body["exception"], body["message"], body["file"], body["line"]]
        except (ValueError, KeyError):
            pass
    return [response.status_code, normalise(response.text)]


def describe(got, want) -> str:
    """The first difference between unstuck's answer and the fresh interpreter's, with the text around it."""
    if isinstance(got, list) and isinstance(want, list) and len(got) == 2 and len(want) == 2 \
            and isinstance(got[1], str) and isinstance(want[1], str):
        at = next((i for i, (a, b) in enumerate(zip(got[1], want[1])) if a != b), min(len(got[1]), len(want[1])))
        return (f"status {got[0]} (fresh interpreter: {want[0]}), {len(got[1])} characters ({len(want[1])}); first "
                f"difference at character {at}:\n  unstuck: ...{got[1][max(0, at - 150):at + 150]!r}\n"
                f"  fresh:   ...{want[1][max(0, at - 150):at + 150]!r}")
    return f"{str(got)[:600]} (fresh interpreter: {str(want)[:600]})"


def settle_on(served, project, previous: dict, expected: dict, step: str) -> float:
    """Poll every URL until unstuck serves `expected`; each answer before it must be `previous`'s."""
    started = time.monotonic()
    with httpx.Client(timeout=60) as client:
        while True:
            done = True
            for url in project.urls:
                got = served_answer(client, served, url)
                if got == expected[url]:
                    continue
                done = False
                assert got == previous.get(url), (
                    f"{project.name}, {step}: unstuck served for {url} what a fresh interpreter serves for neither the "
                    f"tree before nor after: {describe(got, expected[url])}\n{served.logs_tail(40, leave_out='GET /')}")
                assert time.monotonic() - started < project.step_s, (
                    f"{project.name}, {step}: unstuck still serves the old answer for {url} after {project.step_s:g} s: "
                    f"{describe(got, expected[url])}\n{served.logs_tail(40, leave_out='GET /')}")
            if done:
                return time.monotonic() - started
            time.sleep(0.05)


@pytest.mark.parametrize("name", sorted(PROJECTS))
def test_every_answer_is_what_a_fresh_interpreter_serves(serve_project, name):
    project = PROJECTS[name]
    served = serve_project(project)
    tree = served.app_dir
    leaf, central = tree / project.leaf, tree / project.central
    original_leaf, original_central = leaf.read_text(), central.read_text()
    package_dir = leaf.parent

    def save(path, text: str) -> None:
        with open(path, "w") as f:  # in place, as most editors save
            f.write(text)

    def edit_leaf(label: str, **kwargs) -> None:
        save(leaf, with_block(original_leaf, leaf_block(project, label, **kwargs)))

    def paused(change) -> None:
        """Several files changed at once (a rename and its import), read by the watcher as one batch."""
        served.container.pause()
        try:
            change()
        finally:
            served.container.unpause()

    steps = [
        ("the view edited", lambda: edit_leaf("leaf v1")),
        ("the view edited again", lambda: edit_leaf("leaf v2")),
        ("the module most others import edited", lambda: save(central, with_block(original_central,
                                                                                  central_block("central v1")))),
        ("a SyntaxError saved in the view's module", lambda: edit_leaf("leaf v3", syntax_error=True)),
        ("fixed", lambda: edit_leaf("leaf v3")),
        ("an ImportError saved in the view's module", lambda: edit_leaf("leaf v4", missing=True)),
        ("fixed again", lambda: edit_leaf("leaf v4")),
        ("a module added and imported", lambda: paused(lambda: (
            save(package_dir / "realworld_added.py", "TEXT = 'added v1'\n"),
            edit_leaf("leaf v5", added="realworld_added")))),
        ("the module renamed, its import with it", lambda: paused(lambda: (
            os.rename(package_dir / "realworld_added.py", package_dir / "realworld_renamed.py"),
            edit_leaf("leaf v6", added="realworld_renamed")))),
        ("the module deleted while still imported", lambda: os.remove(package_dir / "realworld_renamed.py")),
        ("its import removed", lambda: edit_leaf("leaf v7")),
    ]
    previous = oracle(served, project)
    took = {"the first answers": settle_on(served, project, {}, previous, "before any save")}
    failures = 0
    for step, change in steps:
        time.sleep(PACE_S)  # a person's pace: the figure includes what unstuck does after a reload
        change()
        expected = oracle(served, project)
        failures += any(answer[0] == "error" for answer in expected.values())
        took[step] = settle_on(served, project, previous, expected, step)
        previous = expected
    print(f"\n{project.name}: seconds from each step's oracle to unstuck serving it: "
          + ", ".join(f"{step} {seconds:.2f}" for step, seconds in took.items()))
    # The sequence went through each kind of answer: the new view, a SyntaxError, an ImportError, a missing module.
    assert failures == 3, f"{project.name}: {failures} steps failed to import in a fresh interpreter, expected 3"
    assert all("leaf v7 | central v1" in answer[1] for url, answer in previous.items() if url == project.leaf_url), \
        previous
