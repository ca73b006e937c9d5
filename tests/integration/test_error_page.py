"""The error where the developer looks: the 503 page shows the failing source line of the user's file and a
hint for a missing package; with live reload, a broken save shows an overlay over the open page."""

import html
import re

import httpx

from browser import Browser
from editor import save_in_place
from waiting import has_text, wait_for, wait_until

ORIGINAL = "Hello from unstuck"
HTML = {"accept": "text/html"}
JSON = {"accept": "application/json"}


def serve_sample(start_container, env=None):
    served = start_container(env=env)
    wait_for(served.url("/page"), has_text(200, ORIGINAL), on_timeout=served.logs_tail)
    return served


def test_the_503_page_shows_the_failing_line_of_the_users_file(start_container):
    served = serve_sample(start_container)
    main = served.app_dir / "main.py"
    failing = "    return undefined_name_marker + 1"
    broken = main.read_text() + f"\n\ndef compute():\n{failing}\n\n\nVALUE = compute()\n"
    line = broken.splitlines().index(failing) + 1
    save_in_place(main, broken)

    _, page = wait_for(served.url("/page"), has_text(503, "NameError"), headers=HTML, on_timeout=served.logs_tail)
    assert f"app/main.py:{line}" in page.text
    highlighted = re.search(r'<mark class="failing"><span class="ln">(\d+)</span> (.*?)</mark>', page.text)
    assert highlighted and highlighted.groups() == (str(line), html.escape(failing)), page.text[:3000]
    assert '<details class="traceback">' in page.text  # the raw traceback, folded

    frames = httpx.get(served.url("/page"), headers=JSON, timeout=10).json()["frames"]
    user = [(f["file"], f["line"], f["function"]) for f in frames if f["user"]]
    assert user == [("app/main.py", line + 3, "<module>"), ("app/main.py", line, "compute")], frames


def test_a_missing_undeclared_package_names_the_file_to_add_it_to(start_container):
    served = serve_sample(start_container)
    main = served.app_dir / "main.py"
    save_in_place(main, "import requests_not_declared_pkg\n" + main.read_text())
    hint = "add 'requests_not_declared_pkg' to app/requirements.txt; unstuck installs it in place"

    _, as_json = wait_for(served.url(), lambda r: r.status_code == 503 and "ModuleNotFound" in r.text,
                          headers=JSON, on_timeout=served.logs_tail)
    assert as_json.json()["hint"] == hint
    assert html.escape(hint) in httpx.get(served.url(), headers=HTML, timeout=10).text
    assert f"hint: {hint}" in httpx.get(served.url(), timeout=10).text
    _, status = served.exec("unstuck", "status")
    assert f"hint:         {hint}" in status, status
    assert hint not in served.logs()  # the log keeps its one-line headline


# -- the overlay in a browser ---------------------------------------------------------------------------

OVERLAY_TEXT = """(function () {
    var host = document.querySelector("[data-unstuck-overlay]");
    return host && host.shadowRoot ? host.shadowRoot.textContent : "";
})()"""
FAILING_ROW = """(function () {
    var host = document.querySelector("[data-unstuck-overlay]");
    var row = host && host.shadowRoot && host.shadowRoot.querySelector("[data-failing]");
    return row ? row.textContent : "";
})()"""
MARKED = "document.documentElement.getAttribute('data-test-mark') === 'unreloaded'"


def test_a_broken_save_shows_an_overlay_over_the_open_page_until_the_fix_reloads_it(start_container, tmp_path):
    served = serve_sample(start_container, env={"UNSTUCK_LIVERELOAD": "1"})
    browser = Browser(served.url("/page"), tmp_path / "chromium-profile")
    try:
        browser.connect()
        wait_until("the page shows the app", lambda: (ORIGINAL in browser.text(), browser.text()[:200]))
        # A mark only this very document carries: it is gone once the page reloads.
        browser.evaluate("document.documentElement.setAttribute('data-test-mark', 'unreloaded')")
        main = served.app_dir / "main.py"
        good = main.read_text()

        save_in_place(main, good + "\ndef broken(:\n")
        line = len(good.splitlines()) + 2

        def overlay_shows(*needles):
            def probe():
                text = browser.evaluate(OVERLAY_TEXT) or ""
                return all(n in text for n in needles), text[:300]
            return probe

        wait_until("the overlay shows the syntax error", overlay_shows("SyntaxError", f"app/main.py:{line}"))
        assert browser.evaluate(FAILING_ROW).endswith(f"{line} | def broken(:")  # the highlighted source line
        assert browser.evaluate(MARKED) and ORIGINAL in browser.text()  # over the page, which did not reload

        browser.evaluate("document.dispatchEvent(new KeyboardEvent('keydown', {key: 'Escape'}))")
        wait_until("Esc dismisses the overlay", lambda: (browser.evaluate(OVERLAY_TEXT) == "", "still shown"))
        save_in_place(main, good + "\nraise RuntimeError('second break')\n")
        wait_until("the next error shows the overlay again", overlay_shows("RuntimeError", "second break"))
        assert browser.evaluate(MARKED)

        save_in_place(main, good.replace(f"<h1>{ORIGINAL}</h1>", "<h1>Fixed under the overlay</h1>"))
        wait_until("the fix reloads the page with the new content",
                   lambda: ("Fixed under the overlay" in browser.text() and browser.evaluate(MARKED) is False,
                            browser.text()[:300]))
        assert browser.evaluate(OVERLAY_TEXT) == ""
    finally:
        browser.close()
