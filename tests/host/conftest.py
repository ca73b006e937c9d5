"""Fixtures shared by the tests that run real processes on this machine (no Docker)."""

import socket

import pytest


@pytest.fixture
def listening():
    """A listening TCP socket on 127.0.0.1, as the reload server holds one, for workers to inherit."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    yield sock
    sock.close()
