"""The error where the developer looks: the 503 page shows the failing source line of the user's file and a
hint for a missing package; with live reload, a broken save shows an overlay over the open page. An
exception raised while handling a request answers 500 with the same page, and shows in the overlay too."""

import html
import os
import re

import httpx

from browser import Browser
from editor import save_in_place
from repo import REPO
from shapes import PLAIN_WSGI
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


# -- errors raised while handling a request ----------------------------------------------------------------

SAMPLE_MAIN = (REPO / "app" / "main.py").read_text()
ORDERS = """

def order_total(items):
    return sum(i["cost"] for i in items)


@app.get("/orders")
def orders() -> dict:
    return {"total": order_total([{"price": 3}])}
"""


def test_a_request_error_answers_the_error_page_and_the_fix_answers_again(start_container):
    source = SAMPLE_MAIN + ORDERS
    served = start_container(files={"main.py": source})
    wait_for(served.url("/page"), has_text(200, ORIGINAL), on_timeout=served.logs_tail)
    line = source.splitlines().index('    return sum(i["cost"] for i in items)') + 1

    page = httpx.get(served.url("/orders"), headers=HTML, timeout=10)
    assert page.status_code == 500 and page.headers["x-unstuck-error"], page.text[:500]
    highlighted = re.search(r'<mark class="failing"><span class="ln">(\d+)</span> (.*?)</mark>', page.text)
    assert highlighted.groups() == (str(line), html.escape('    return sum(i["cost"] for i in items)'))
    assert '<p class="request">GET /orders</p>' in page.text
    as_json = httpx.get(served.url("/orders"), headers=JSON, timeout=10).json()
    assert (as_json["request"], as_json["exception"], as_json["file"], as_json["line"]) == (
        "GET /orders", "KeyError", "app/main.py", line)
    text = httpx.get(served.url("/orders"), timeout=10).text
    assert text.startswith(f"500 The request failed\nGET /orders\nKeyError: 'cost' (app/main.py:{line})\n"), text
    # The log: a line with the request, file and line, and the traceback once per failed request.
    logged = wait_until("the failure is logged", lambda: (
        served.logs().count(f"GET /orders failed: KeyError: 'cost' (app/main.py:{line})") == 3, served.logs_tail()))
    assert served.logs().count("Traceback (most recent call last)") == 3, logged

    save_in_place(served.app_dir / "main.py", source.replace('i["cost"]', 'i.get("cost", i["price"])'))
    wait_for(served.url("/orders"), has_text(200, '{"total":3}'), on_timeout=served.logs_tail)


def test_a_wsgi_apps_request_error_answers_the_error_page(start_container):
    served = start_container(env={"APP_MODULE": "app.wsgi_app:application"}, files={"wsgi_app.py": PLAIN_WSGI})
    wait_for(served.url("/tea"), has_text(200, "2"), on_timeout=served.logs_tail)
    failed = httpx.get(served.url("/coffee"), timeout=10)
    assert failed.status_code == 500 and failed.headers["x-unstuck-error"]
    assert failed.text.startswith("500 The request failed\nGET /coffee\nKeyError: 'coffee' (app/wsgi_app.py:2)\n")
    assert "  > 2 |     return prices[name]" in failed.text


DASHBOARD = """

def order_total(items):
    return sum(i["price"] for i in items)


@app.get("/api/total")
def api_total() -> dict:
    return {"total": order_total([{"price": 3}, {"price": 2}])}


@app.get("/dashboard", response_class=HTMLResponse)
def dashboard() -> str:
    return DASHBOARD_PAGE.replace("TITLE", "Orders")


DASHBOARD_PAGE = (
    "<!doctype html><html><body><h1>TITLE</h1><p id='total'>loading</p><script>fetch('/api/total')"
    ".then(function (r) { return r.json(); }).then(function (d) { document.getElementById('total')"
    ".textContent = 'total: ' + d.total; }, function () { document.getElementById('total').textContent = 'failed'; })"
    "</script></body></html>")
"""


def test_a_failed_fetch_and_a_failed_page_show_in_the_overlay_until_the_fix(start_container, tmp_path):
    source = SAMPLE_MAIN + DASHBOARD
    served = start_container(env={"UNSTUCK_LIVERELOAD": "1"}, files={"main.py": source})
    wait_for(served.url("/dashboard"), has_text(200, "Orders"), on_timeout=served.logs_tail)
    shots = os.environ.get("UNSTUCK_SCREENSHOTS") or str(tmp_path)
    browser = Browser(served.url("/dashboard"), tmp_path / "chromium-profile")
    main = served.app_dir / "main.py"

    def overlay_shows(*needles):
        def probe():
            text = browser.evaluate(OVERLAY_TEXT) or ""
            return all(n in text for n in needles), text[:300]
        return probe

    try:
        browser.connect()
        wait_until("the page shows the total", lambda: ("total: 5" in browser.text(), browser.text()[:200]))

        # The page's fetch fails at request time: the new generation reloads the page, whose fetch gets a 500.
        broken_api = source.replace('i["price"] for i', 'i["cost"] for i')
        save_in_place(main, broken_api)
        line = broken_api.splitlines().index('    return sum(i["cost"] for i in items)') + 1
        wait_until("the overlay shows the failed fetch",
                   overlay_shows("The request failed", "GET /api/total", "KeyError: 'cost'", f"app/main.py:{line}"))
        assert browser.evaluate(FAILING_ROW).endswith(f'{line} |     return sum(i["cost"] for i in items)')
        assert "failed" in browser.text()  # the page itself, under the overlay, saw its fetch fail
        browser.screenshot(f"{shots}/request-error-overlay-fetch.png")
        # The same for an XMLHttpRequest of the page's.
        browser.evaluate("document.dispatchEvent(new KeyboardEvent('keydown', {key: 'Escape'}))")
        wait_until("Esc dismisses the overlay", lambda: (browser.evaluate(OVERLAY_TEXT) == "", "still shown"))
        browser.evaluate("(function () { var x = new XMLHttpRequest(); x.open('GET', '/api/total?via=xhr'); x.send(); })()")
        wait_until("the overlay shows the failed XMLHttpRequest", overlay_shows("GET /api/total?via=xhr", "KeyError"))

        # The open page itself fails at request time: it stays as it was, the overlay tells why.
        browser.evaluate("document.documentElement.setAttribute('data-test-mark', 'unreloaded')")
        broken_page = broken_api.replace('.replace("TITLE", "Orders")', '.replace("TITLE", {}["title"])')
        save_in_place(main, broken_page)
        wait_until("the overlay shows the failed page", overlay_shows("GET /dashboard", "KeyError: 'title'"))
        assert browser.evaluate(MARKED)  # not reloaded into the error
        browser.screenshot(f"{shots}/request-error-overlay-page.png")

        save_in_place(main, source.replace('{"price": 2}', '{"price": 4}'))
        wait_until("the fix reloads the page with the new answer",
                   lambda: ("total: 7" in browser.text() and browser.evaluate(MARKED) is False, browser.text()[:300]))
        assert browser.evaluate(OVERLAY_TEXT) == ""
    finally:
        browser.close()
