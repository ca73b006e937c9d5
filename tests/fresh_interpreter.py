"""What a fresh interpreter serves for the tree as it is saved: the oracle every differential test compares with.

`serves`: run in the container under test, with unstuck's runtime, importing the app the way a worker does (worker.run:
the project's environment and Python check, discovery), answering each path with one plain ASGI request (the
runtime has no HTTP client). Used by tests/integration/test_differential.py and tests/realworld. `on_host`: a script run in a fresh interpreter of
the test venv (the memo tests build an app there, with a warm process's memo and without).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from repo import FASTAPI_0_115, REPO

SCRIPT = r"""
import asyncio, json, os, sys
from pathlib import Path
from unstuck import config
from unstuck.app import loading
paths, headers = json.loads(sys.argv[1]), json.loads(sys.argv[2])
settings = config.load(check_dirs=False)
failure = loading.activate_project(settings.app_dir, settings.project_env)
os.chdir(settings.app_dir)
sys.path.insert(0, str(settings.app_dir))
loaded = None if failure else loading.load(settings.app_module, settings.app_dir)
failure = failure or loaded.failure
out = {}
if failure is not None:
    out = {p: ["error", failure.exc_type, failure.message, failure.file, failure.line] for p in paths}
else:
    async def get(target):  # one plain ASGI request (the runtime has no HTTP client)
        path, _, query = target.partition("?")
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
                 "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": query.encode(),
                 "root_path": "", "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
                 "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 8000)}
        sent, status, asked, done = [], [], [], asyncio.Event()
        async def receive():
            if not asked:
                asked.append(1)
                return {"type": "http.request", "body": b"", "more_body": False}
            await done.wait()
            return {"type": "http.disconnect"}
        async def send(message):
            if message["type"] == "http.response.start":
                status.append(message["status"])
            elif message["type"] == "http.response.body":
                sent.append(message.get("body", b""))
                if not message.get("more_body"):
                    done.set()
        await loaded.app(scope, receive, send)
        return [status[0], b"".join(sent).decode(errors="replace")]
    async def all_paths():
        for p in paths:
            out[p] = await get(p)
    asyncio.run(all_paths())
print("ORACLE " + json.dumps(out))
"""


def serves(container, paths: list[str], headers: dict[str, str]) -> dict[str, list]:
    """Each path's answer, [status, body] or ["error", exc_type, message, file, line] when the app cannot load."""
    code, said = container.exec("/opt/unstuck/venv/bin/python", "-c", SCRIPT, json.dumps(paths), json.dumps(headers))
    lines = [line for line in said.splitlines() if line.startswith("ORACLE ")]
    assert code == 0 and lines, f"the fresh interpreter failed ({code}):\n{said[-3000:]}"
    return json.loads(lines[-1][len("ORACLE "):])


def on_host(script: str, *args: str) -> dict:
    """What `script`, run with `args` in a fresh interpreter of the test venv (no bytecode written), printed as JSON."""
    out = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout)


def on_fastapi_0_115(tmp_path, shop: str, script: str, *args: str) -> dict:
    """What `script` printed as JSON, run on FastAPI 0.115 (tests/requirements-fastapi-0.115.txt, as mealie pins it,
    installed apart from the test venv's own by `make`) with `shop` as shop.py in `tmp_path`; its arguments: that
    FastAPI's directory, `tmp_path`, unstuck's entrypoint directory, then `args`."""
    if not (FASTAPI_0_115 / "fastapi").is_dir():
        pytest.fail(f"FastAPI 0.115 is not installed in {FASTAPI_0_115}: run `make test-unit` (it installs "
                    "tests/requirements-fastapi-0.115.txt there)", pytrace=False)
    (tmp_path / "shop.py").write_text(textwrap.dedent(shop))
    return on_host(script, str(FASTAPI_0_115), str(tmp_path), str(REPO / "entrypoint"), *args)
