"""The frameworks' warm-ups run without error with the real frameworks installed: one that fails is
skipped in silence (by design), so only this test would notice that it no longer warms anything."""

import importlib

import pytest

from unstuck.warm import warmup


@pytest.mark.parametrize("name", sorted(warmup.WARMUPS))
def test_each_warmup_runs_against_the_real_framework(name, monkeypatch):
    try:
        importlib.import_module(name)
    except ImportError:
        pytest.fail(f"{name} is not installed in the test environment (tests/requirements.txt)", pytrace=False)
    monkeypatch.setattr(warmup, "WARMUPS", {name: warmup.WARMUPS[name]})
    assert warmup.run() == [name]


def test_frameworks_the_app_does_not_use_are_left_alone(monkeypatch):
    monkeypatch.setattr(warmup, "WARMUPS", {"not_imported_anywhere": lambda: 1 / 0})
    assert warmup.run() == []


def test_the_request_warmup_serves_through_the_real_framework():
    import fastapi  # noqa: F401 - it is what the warm-up is for

    assert warmup.run_requests() == ["fastapi"]
