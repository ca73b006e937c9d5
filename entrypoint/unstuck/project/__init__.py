"""The project environment: the dependency set, installing it with uv, the Python check."""
