"""The "realistic" benchmark app: a small production-shaped service (settings, ORM models, a CRUD layer,
a dozen routers, auth). Mounted at /workspace/app in the bench container and served as app.main:app."""
