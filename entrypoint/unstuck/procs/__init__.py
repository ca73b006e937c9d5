"""Procfile workers: reading the Procfile, each worker's wrapper and state machine, the release."""
