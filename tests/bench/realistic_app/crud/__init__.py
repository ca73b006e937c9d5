"""Database access, one module per aggregate; routers call these instead of building queries themselves."""
