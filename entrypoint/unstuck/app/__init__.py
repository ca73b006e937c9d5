"""Finding the app in the project and loading it as ASGI, without and with importing it."""
