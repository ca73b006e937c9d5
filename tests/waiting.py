"""Bounded polling over HTTP on 127.0.0.1: wait for a condition, never for a fixed time."""

import time
from typing import Callable

import httpx
import pytest

DEFAULT_TIMEOUT = 30.0


def wait_for(url: str, check: Callable[[httpx.Response], bool], timeout: float = DEFAULT_TIMEOUT,
             headers: dict | None = None, on_timeout: Callable[[], str] | None = None) -> tuple[float, httpx.Response]:
    """Poll `url` until `check(response)` holds; return (seconds waited, response)."""
    start = time.monotonic()
    last = "no response yet"
    with httpx.Client(timeout=5.0) as client:
        while True:
            try:
                response = client.get(url, headers=headers or {})
                if check(response):
                    return time.monotonic() - start, response
                last = f"{response.status_code}: {response.text[:300]!r}"
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__}: {exc}"
            if time.monotonic() - start > timeout:
                extra = on_timeout() if on_timeout else ""
                pytest.fail(f"{url}: condition not met within {timeout:g} s; last: {last}\n{extra}", pytrace=False)
            time.sleep(0.02)


def has_text(status: int, *needles: str) -> Callable[[httpx.Response], bool]:
    return lambda r: r.status_code == status and all(n in r.text for n in needles)


def wait_until(what: str, probe: Callable[[], tuple[bool, str]], timeout: float = DEFAULT_TIMEOUT) -> str:
    """Poll `probe()` -> (done, detail) until done; return the detail, or fail saying what never happened."""
    start = time.monotonic()
    while True:
        done, detail = probe()
        if done:
            return detail
        if time.monotonic() - start > timeout:
            pytest.fail(f"{what}: not within {timeout:g} s; last: {detail}", pytrace=False)
        time.sleep(0.1)
