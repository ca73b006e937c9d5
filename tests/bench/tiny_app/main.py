"""The sample app unstuck serves by default. Edit it while `docker compose up` runs: saves are served at once,
and a broken save shows its error on the page until you fix it."""

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

app = FastAPI(title="unstuck sample app")


@app.get("/")
def index() -> dict:
    return {"message": "Hello from unstuck", "edit": "app/main.py"}


@app.get("/page", response_class=HTMLResponse)
def page() -> str:
    return "<!doctype html><html><head><title>unstuck</title></head><body><h1>Hello from unstuck</h1></body></html>"


@app.get("/health")
def health() -> dict:
    return {"status": "ok"}


@app.get("/items/{item_id}")
def read_item(item_id: int, q: str | None = None) -> dict:
    return {"item_id": item_id, "q": q}
