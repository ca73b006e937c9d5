"""A connection taken by a successor while this generation had read a request on it (draining.py)."""

from unstuck.generation.draining import DrainOnShutdown


class Transport:
    def __init__(self):
        self.closed = False

    def is_closing(self):
        return self.closed

    def close(self):
        self.closed = True

    def get_write_buffer_size(self):
        return 0


class Cycle:
    def __init__(self, complete):
        self.response_complete = complete
        self.response_started = complete
        self.keep_alive = True


class Base:  # what uvicorn's protocol does in these calls, as far as the hand-over is concerned
    def __init__(self):
        self.transport, self.pipeline, self.connections, self.read = Transport(), [], set(), []
        self.connections.add(self)

    def data_received(self, data):
        self.read.append(data)

    def on_response_complete(self):
        pass


class Protocol(DrainOnShutdown, Base):
    pass


def test_a_request_read_while_the_hand_over_was_on_its_way_is_answered_here_then_the_copy_is_closed():
    p = Protocol()
    p._cycle = Cycle(complete=False)  # read in the loop turn that paused the connection for the hand-over
    assert p.answers_before_it_goes()  # the successor took it: this one still owes that answer
    assert not p.transport.closed and p in p.connections
    p.data_received(b"GET /next HTTP/1.1\r\n\r\n")  # the successor's to read, never parsed here
    assert p.read == []
    p._cycle.response_complete = True
    p.on_response_complete()  # the answer is out: only now is this process's copy closed
    assert p.transport.closed and p not in p.connections


def test_an_idle_connection_taken_by_a_successor_is_forgotten_at_once():
    p = Protocol()
    p._cycle = Cycle(complete=True)
    assert not p.answers_before_it_goes()
    p.data_received(b"GET / HTTP/1.1\r\n\r\n")
    assert p.read == [b"GET / HTTP/1.1\r\n\r\n"]
