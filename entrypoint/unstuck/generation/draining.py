"""An HTTP protocol that lets a retiring worker hand its connections over, or answer what is on the wire.

On shutdown uvicorn closes idle keep-alive connections at once, and closes a busy one right after its
response. A client can have its next request on the way on such a connection (it has not yet seen the
close), or a connection the worker just accepted may not have delivered its bytes: the client then gets
"server disconnected without sending a response".

Here, when a newer generation serves (handoff.py), a retiring worker gives it each keep-alive connection
the moment that connection is idle: at once, or right after the response in progress. The client goes on
using its connection, and its next request gets the new code. When there is nobody to give connections
to (the container stops), the worker answers every request that arrives with `Connection: close`, so the
client reconnects, and closes a connection only after it has stayed idle for a short drain window.
"""

from __future__ import annotations

import asyncio
from typing import Callable

from unstuck.seams.uvicorn_seam import AutoHTTPProtocol

DRAIN_S = 0.5


class DrainOnShutdown:
    _draining = False
    _moving = False  # a successor asked for it (handoff.pull): it goes once the response in progress is out
    _cycle = None
    _partial = False  # a request has begun arriving and its headers are not complete yet
    _handing = False  # sent to a successor, whose answer (taken or not) has not come yet
    _given = False  # taken by a successor while this one still answers a request it had read meanwhile
    # Set by the server: hand the connection over, then call back with whether it was taken (False: not sent).
    give: Callable[[asyncio.Transport, Callable[[bool], None]], bool] | None = None

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        # Handed over (handoff.py) to a generation that has begun its shutdown since: uvicorn's shutdown
        # only reaches the connections it had then, and would wait for this one until it is killed.
        retiring = getattr(self.server_state, "unstuck_retiring", None)
        if retiring is not None:
            self.give = retiring[0]
            self.shutdown()

    # httptools' parser callbacks (h11's protocol has none: it never hands a connection over)
    def on_message_begin(self) -> None:
        self._partial = True
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self._partial = False
        super().on_headers_complete()

    def idle(self) -> bool:
        """Between requests, with nothing read or written half-way: the connection can change owners.
        Only httptools' protocol, whose parser state this can see entirely, is ever handed over."""
        transport = getattr(self, "transport", None)
        return (hasattr(self, "pipeline") and not self.pipeline and not self._partial
                and (self._cycle is None or self._cycle.response_complete) and transport is not None
                and not transport.is_closing() and transport.get_write_buffer_size() == 0)

    @property
    def cycle(self):
        return self._cycle

    @cycle.setter
    def cycle(self, value) -> None:
        # Every request that starts while draining, with nobody to hand the connection to, is answered
        # with `Connection: close`.
        if value is not None and self._draining and self.give is None:
            value.keep_alive = False
        self._cycle = value

    def _hand_over(self) -> bool:
        """Give the connection away if it is idle; True once it is on its way (its reading paused until the
        receiver answers: see handoff.give)."""
        if self.give is None or self._handing or not self.idle():
            return self._handing
        self._handing = self.give(self.transport, self._handed)
        if not self._handing:
            self._nobody_takes_it()
        return self._handing

    def answers_before_it_goes(self) -> bool:
        """The successor took the connection (handoff.give): True when a request arrived here while the
        hand-over was on its way, so this one answers it before it closes its copy (on_response_complete).
        Pausing the transport does not stop a read the event loop had already scheduled in the same turn
        (asyncio's selector loop runs the ready callbacks it collected): dropping that request would leave
        its client waiting for an answer nobody owes it, since the successor never sees those bytes."""
        cycle = self._cycle
        if (cycle is not None and not cycle.response_complete) or getattr(self, "pipeline", None):
            self._given = True
            return True
        return False

    def data_received(self, data: bytes) -> None:
        if self._given:
            return  # after the answer it owed: what the client sends next is the successor's to read
        super().data_received(data)

    def _handed(self, taken: bool) -> None:
        self._handing = False
        if taken:
            return  # the giver forgot it: the connection lives on in the successor
        self._nobody_takes_it()
        if self._draining and not self.transport.is_closing():
            self._close_later()

    def _nobody_takes_it(self) -> None:
        # The successor is gone, or retiring too: the connection stays here, and while draining it is
        # answered as when stopping, with `Connection: close`. Kept alive instead, it would be closed when
        # next found idle, under a client that may be sending its next request at that moment.
        self.give, self._moving = None, False

    def move_when_idle(self, give: Callable[[asyncio.Transport, Callable[[bool], None]], bool]) -> None:
        """A successor is ready and asked for this connection: hand it over now if it is idle, else right
        after the response in progress (the client's next request then reaches the new code)."""
        self.give, self._moving = give, True
        if self._hand_over():
            self._moving = False

    def shutdown(self) -> None:
        self._draining = True
        cycle = self._cycle
        if cycle is not None and not cycle.response_complete:
            if self.give is None and not cycle.response_started:
                cycle.keep_alive = False  # uvicorn closes the connection after this response
            return  # on_response_complete decides, once the answer is out
        if not self._hand_over():
            self._close_later()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._given:  # the answer it owed is out (answers_before_it_goes): the successor has the rest
            self._forget()
            return
        # A response that had already promised keep-alive: the client may send one more request.
        if self._moving and not self.transport.is_closing() and self._hand_over():
            return
        if self._draining and not self.transport.is_closing() and not self._hand_over():
            self._close_later()

    def _forget(self) -> None:
        """Close this process's copy of a connection a successor took (the connection lives on there)."""
        connections = getattr(self, "connections", None)
        if connections is not None:
            connections.discard(self)
        self.transport.close()

    def _close_later(self) -> None:
        asyncio.get_running_loop().call_later(DRAIN_S, self._close_if_idle)

    def _close_if_idle(self) -> None:
        if self._hand_over():
            return
        cycle = self._cycle
        if (cycle is None or cycle.response_complete) and not self.transport.is_closing():
            self.transport.close()


class DrainingHTTPProtocol(DrainOnShutdown, AutoHTTPProtocol):  # type: ignore[misc, valid-type]
    pass
