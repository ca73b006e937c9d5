"""Headless Chromium driven over the DevTools protocol on 127.0.0.1, for tests of what a page shows."""

from __future__ import annotations

import base64
import contextlib
import json
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect as ws_connect

from containers import free_port
from waiting import wait_until


class Browser:
    """One Chromium with one page open at `url`; `evaluate` runs JavaScript in it."""

    FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--disable-quic", "--window-size=1280,800"]

    def __init__(self, url: str, profile) -> None:
        binary = shutil.which("chromium") or shutil.which("chromium-browser")
        if binary is None:
            pytest.fail("chromium is not installed (apt-get install chromium; .ci/run does it)", pytrace=False)
        self.port = free_port()
        self.proc = subprocess.Popen(
            [binary, *self.FLAGS, f"--user-data-dir={profile}", f"--remote-debugging-port={self.port}",
             "--remote-debugging-address=127.0.0.1", url],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.ws = None
        self.next_id = 0
        self.stack = contextlib.ExitStack()

    def connect(self) -> None:
        def page_target():
            try:
                targets = httpx.get(f"http://127.0.0.1:{self.port}/json/list", timeout=2).json()
            except (httpx.HTTPError, ValueError) as exc:
                return False, str(exc)
            pages = [t for t in targets if t.get("type") == "page"]
            return bool(pages), json.dumps(pages[:1] or targets)

        target = json.loads(wait_until("chromium's page target", page_target))[0]
        self.ws = self.stack.enter_context(ws_connect(target["webSocketDebuggerUrl"], open_timeout=10,
                                                      max_size=None))

    def call(self, method: str, params: dict) -> dict:
        """A DevTools protocol command on the page; its result."""
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            reply = json.loads(self.ws.recv(timeout=10))
            if reply.get("id") == self.next_id:
                return reply.get("result", {})

    def evaluate(self, expression: str):
        """The value of a JavaScript expression in the page (None when it throws or is undefined)."""
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        return result.get("result", {}).get("value")

    def screenshot(self, path) -> None:
        """What the page shows, as a PNG file."""
        Path(path).write_bytes(base64.b64decode(self.call("Page.captureScreenshot", {"format": "png"})["data"]))

    def text(self) -> str:
        """The text the page shows, including what open shadow roots render (overlays live there)."""
        return self.evaluate("""(function () {
            var out = [document.body ? document.body.innerText : ""];
            document.querySelectorAll("*").forEach(function (e) {
                if (e.shadowRoot) Array.prototype.forEach.call(e.shadowRoot.children, function (c) {
                    out.push(c.innerText || "");
                });
            });
            return out.join("\\n");
        })()""") or ""

    def close(self) -> None:
        self.stack.close()
        self.proc.kill()
        self.proc.wait(timeout=10)
