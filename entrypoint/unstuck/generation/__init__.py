"""One generation of the app (a uvicorn worker): serving, the keep-alive hand-over, its output, live reload."""
