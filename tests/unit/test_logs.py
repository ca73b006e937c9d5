"""What a generation prints: uvicorn's start and stop lines for each reload are left out (unstuck's own
reload line says it), unless LOG_LEVEL=debug; anything else uvicorn says still shows."""

import io
import logging

import pytest

from unstuck import logs


@pytest.fixture
def uvicorn_error():
    logger = logging.getLogger("uvicorn.error")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    saved = (logger.level, logger.propagate, logger.filters[:])
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)
    logger.level, logger.propagate, logger.filters[:] = saved[0], saved[1], saved[2]


def one_generation(logger) -> None:
    """What uvicorn 0.54 logs for a generation that starts, serves and stops (server.py, lifespan/on.py)."""
    logger.info("Started server process [%d]", 42)
    logger.info("Waiting for application startup.")
    logger.info("Application startup complete.")
    logger.info("Shutting down")
    logger.info("Waiting for connections to close. (CTRL+C to force quit)")
    logger.info("Waiting for application shutdown.")
    logger.info("Application shutdown complete.")
    logger.info("Finished server process [%d]", 42)
    logger.info("Waiting for background tasks to complete. (CTRL+C to force quit)")  # the app's own tasks
    logger.error("Application startup failed. Exiting.")


def test_a_generations_start_and_stop_lines_are_left_out(uvicorn_error):
    logger, stream = uvicorn_error
    logs.quiet_generations("info")
    logs.quiet_generations("info")  # every generation's Config asks again: one filter
    one_generation(logger)
    assert stream.getvalue().splitlines() == ["Waiting for background tasks to complete. (CTRL+C to force quit)",
                                              "Application startup failed. Exiting."]


def test_with_debug_logging_every_line_shows(uvicorn_error):
    logger, stream = uvicorn_error
    logs.quiet_generations("info")
    logs.quiet_generations("debug")
    one_generation(logger)
    assert len(stream.getvalue().splitlines()) == 10
    assert "Started server process [42]" in stream.getvalue()


def test_the_lines_left_out_are_the_ones_this_uvicorn_prints():
    import inspect

    import uvicorn.lifespan.on
    import uvicorn.server

    source = inspect.getsource(uvicorn.server) + inspect.getsource(uvicorn.lifespan.on)
    assert [line for line in logs.GENERATION_LINES if f'"{line}"' not in source] == []
