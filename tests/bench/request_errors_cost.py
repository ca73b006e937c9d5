"""What unstuck's request-time error page (UNSTUCK_ERROR_PAGES, request_errors.py) costs a request that does
not fail: the same tiny FastAPI app, wrapped as a worker wraps it (worker.wrap_app) with the page on and off,
measured in the same run, in two ways:

- in process: the app called directly with ASGI messages, no server: microseconds per request;
- over HTTP: served by uvicorn (httptools) in a process of its own on 127.0.0.1, requests per second from
  keep-alive connections of an asyncio client in this process; rounds alternate on/off, medians reported.

    .venv/bin/python tests/bench/request_errors_cost.py [--seconds 3] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "entrypoint"))


def tiny_app(error_pages: str):
    from fastapi import FastAPI

    from unstuck import config
    from unstuck.generation import worker

    app = FastAPI()

    @app.get("/")
    async def index() -> dict:
        return {"hello": "world"}

    settings = replace(config.load({}, check_dirs=False), app_dir=Path(__file__).parent, error_pages=error_pages)
    return worker.wrap_app(app, settings)


def in_process_us(app, requests: int) -> float:
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": "/", "raw_path": b"/", "root_path": "", "query_string": b"", "headers": [(b"host", b"x")],
             "server": ("127.0.0.1", 8000), "client": ("127.0.0.1", 1)}

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        pass

    async def run() -> float:
        for _ in range(200):  # warm-up
            await app(dict(scope), receive, send)
        started = time.perf_counter()
        for _ in range(requests):
            await app(dict(scope), receive, send)
        return (time.perf_counter() - started) / requests * 1e6

    return asyncio.run(run())


def serve(error_pages: str, port: int) -> None:
    import uvicorn

    uvicorn.run(tiny_app(error_pages), host="127.0.0.1", port=port, log_level="warning", access_log=False,
                http="httptools", lifespan="off")


async def load(port: int, seconds: float, connections: int = 8) -> float:
    request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    done = 0
    stop = time.perf_counter() + seconds

    async def one():
        nonlocal done
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while time.perf_counter() < stop:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
            done += 1
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(connections)))
    return done / (time.perf_counter() - started)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def over_http(error_pages: str, seconds: float) -> float:
    port = free_port()
    server = subprocess.Popen([sys.executable, __file__, "--serve", error_pages, "--port", str(port)])
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        asyncio.run(load(port, 0.5))  # warm-up
        return asyncio.run(load(port, seconds))
    finally:
        server.terminate()
        server.wait(timeout=10)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--serve")
    parser.add_argument("--port", type=int)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port)
        return 0
    figures: dict[str, dict[str, list[float]]] = {"off": {"us": [], "rps": []}, "on": {"us": [], "rps": []}}
    for _ in range(args.rounds):
        for mode in ("off", "on"):
            figures[mode]["us"].append(in_process_us(tiny_app(mode), 20000))
            figures[mode]["rps"].append(over_http(mode, args.seconds))
    print(f"tiny FastAPI app, {args.rounds} rounds alternating, medians (cpus: {os.cpu_count()})")
    print(f"{'UNSTUCK_ERROR_PAGES':<22}{'in process (us/request)':>26}{'over HTTP (requests/s)':>26}")
    for mode in ("off", "on"):
        us, rps = statistics.median(figures[mode]["us"]), statistics.median(figures[mode]["rps"])
        print(f"{mode:<22}{us:>26.1f}{rps:>26.0f}")
    off, on = (statistics.median(figures[m]["rps"]) for m in ("off", "on"))
    added = statistics.median(figures["on"]["us"]) - statistics.median(figures["off"]["us"])
    print(f"the page's middleware: +{added:.1f} us per request in process; {100 * (on - off) / off:+.1f}% requests/s over HTTP")
    return 0


if __name__ == "__main__":
    sys.exit(main())
