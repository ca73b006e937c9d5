"""Watching the project's files: inotify or polling, filters, bursts, catch-up and the safety poll."""
