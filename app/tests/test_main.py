"""The sample app's own tests. Run them in the dev container (or `docker compose exec app`) from
/workspace with `python -m pytest app/tests`."""

from fastapi.testclient import TestClient

from app.main import app

client = TestClient(app)


def test_index_greets_in_json():
    response = client.get("/")
    assert response.status_code == 200
    assert isinstance(response.json()["message"], str)


def test_health():
    assert client.get("/health").json() == {"status": "ok"}


def test_page_is_html():
    response = client.get("/page")
    assert response.headers["content-type"].startswith("text/html")
    assert "<h1>" in response.text


def test_unknown_path_is_404():
    assert client.get("/no-such-page").status_code == 404
