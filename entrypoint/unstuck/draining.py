"""An HTTP protocol that lets a retiring worker answer requests already on the wire.

On shutdown uvicorn closes idle keep-alive connections at once, and closes a busy one right after its
response. A client can have its next request on the way on such a connection (it has not yet seen the
close), or a connection the worker just accepted may not have delivered its bytes: the client then gets
"server disconnected without sending a response". A retiring worker here instead answers every request
that arrives, with `Connection: close` so the client reconnects (to the next generation, which owns the
accept queue by then), and closes a connection only after it has stayed idle for a short drain window.
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.auto import AutoHTTPProtocol

DRAIN_S = 0.5


class DrainOnShutdown:
    _draining = False
    _cycle = None
    _partial = False  # a request has begun arriving and its headers are not complete yet

    # httptools' parser callbacks (h11's protocol has none: it never hands a connection over)
    def on_message_begin(self) -> None:
        self._partial = True
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self._partial = False
        super().on_headers_complete()

    def idle(self) -> bool:
        """Between requests, with nothing read or written half-way: the connection can change owners
        (handoff.py). Only for httptools' protocol, whose state this can see entirely."""
        transport = getattr(self, "transport", None)
        return (hasattr(self, "pipeline") and not self.pipeline and not self._partial and not self._draining
                and (self._cycle is None or self._cycle.response_complete) and transport is not None
                and not transport.is_closing() and transport.get_write_buffer_size() == 0)

    @property
    def cycle(self):
        return self._cycle

    @cycle.setter
    def cycle(self, value) -> None:
        # Every request that starts while draining is answered with `Connection: close`.
        if value is not None and self._draining:
            value.keep_alive = False
        self._cycle = value

    def shutdown(self) -> None:
        self._draining = True
        cycle = self._cycle
        if cycle is not None and not cycle.response_complete:
            if not cycle.response_started:
                cycle.keep_alive = False  # uvicorn closes the connection after this response
            return
        self._close_later()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # A response that had already promised keep-alive: the client may send one more request.
        if self._draining and not self.transport.is_closing():
            self._close_later()

    def _close_later(self) -> None:
        asyncio.get_running_loop().call_later(DRAIN_S, self._close_if_idle)

    def _close_if_idle(self) -> None:
        cycle = self._cycle
        if (cycle is None or cycle.response_complete) and not self.transport.is_closing():
            self.transport.close()


class DrainingHTTPProtocol(DrainOnShutdown, AutoHTTPProtocol):  # type: ignore[misc, valid-type]
    pass
