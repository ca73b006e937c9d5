"""unstuck: a reload server for containers that never gets stuck."""
