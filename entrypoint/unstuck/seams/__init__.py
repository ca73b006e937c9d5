"""Third-party internals, one module per library: what unstuck relies on beyond each one's documented API
(uvicorn's Server phases and connection bookkeeping, watchfiles' Rust watcher, supervisor's poller and
child utilities) is reached through these, and tests/unit/test_seams.py states each contract, so that an
upgrade that moves one fails there, naming it, instead of breaking reloads."""
