"""One log format for unstuck's own lines, matching uvicorn's ("INFO:     ...") so the stream reads as one."""

from __future__ import annotations

import logging
import sys

log = logging.getLogger("unstuck")


def setup(level: str) -> logging.Logger:
    # Here, not at the top: every module logs through `log`, and the pure state machines (generations.py,
    # proc_states.py) must import without uvicorn.
    from unstuck.seams.uvicorn_seam import DefaultFormatter

    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(DefaultFormatter("%(levelprefix)s [unstuck] %(message)s", use_colors=False))
    log.handlers[:] = [handler]
    log.setLevel(logging.DEBUG if level in ("debug", "trace") else getattr(logging, level.upper()))
    log.propagate = False
    return log


# What uvicorn prints for each generation's start and stop: seven lines a reload that say nothing unstuck's
# own line does not ("reloaded in 0.031 s (app/main.py modified)"), and that cost the reload a write each.
# Shown at LOG_LEVEL=debug; uvicorn's warnings and errors (a failed lifespan startup ...) always are.
GENERATION_LINES = frozenset({
    "Started server process [%d]", "Waiting for application startup.", "Application startup complete.",
    "Shutting down", "Waiting for connections to close. (CTRL+C to force quit)",
    "Waiting for application shutdown.", "Application shutdown complete.", "Finished server process [%d]",
})


class QuietGenerations(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.INFO or record.msg not in GENERATION_LINES


def quiet_generations(level: str) -> None:
    """In a worker, once uvicorn's logging is configured: leave out GENERATION_LINES (unless debugging)."""
    from unstuck.seams.uvicorn_seam import ERROR_LOGGER  # in a worker: uvicorn is imported already

    logger = logging.getLogger(ERROR_LOGGER)
    present = [f for f in logger.filters if isinstance(f, QuietGenerations)]
    if level in ("debug", "trace"):
        for found in present:
            logger.removeFilter(found)
    elif not present:
        logger.addFilter(QuietGenerations())
