"""One log format for unstuck's own lines, matching uvicorn's ("INFO:     ...") so the stream reads as one."""

from __future__ import annotations

import logging
import sys

from uvicorn.logging import DefaultFormatter

log = logging.getLogger("unstuck")


def setup(level: str) -> logging.Logger:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(DefaultFormatter("%(levelprefix)s [unstuck] %(message)s", use_colors=False))
    log.handlers[:] = [handler]
    log.setLevel(logging.DEBUG if level in ("debug", "trace") else getattr(logging, level.upper()))
    log.propagate = False
    return log
