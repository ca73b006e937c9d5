"""The job routes without the stack (plain `docker compose up`): they answer 503 with JSON saying how to
start Postgres and Redis, and bad input is a 422. The round trip with the services is tested from the
host, in tests/integration/test_stack.py."""

import uuid

import pytest
from fastapi.testclient import TestClient

from app.main import app

client = TestClient(app)


@pytest.fixture(autouse=True)
def no_stack(monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)


def test_enqueue_without_the_stack_is_503_saying_how_to_start_it():
    response = client.post("/jobs", json={"text": "hello world"})
    assert response.status_code == 503
    body = response.json()
    assert "DATABASE_URL is not set" in body["error"]
    assert "compose.stack.yaml" in body["fix"]


def test_reading_a_job_without_the_stack_is_503_saying_how_to_start_it():
    response = client.get(f"/jobs/{uuid.uuid4()}")
    assert response.status_code == 503
    assert "compose.stack.yaml" in response.json()["fix"]


def test_a_job_needs_text_and_a_sane_delay():
    assert client.post("/jobs", json={}).status_code == 422
    assert client.post("/jobs", json={"text": "x", "delay": 3600}).status_code == 422


def test_a_job_id_is_a_uuid():
    assert client.get("/jobs/not-a-uuid").status_code == 422
