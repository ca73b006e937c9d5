"""A spare's wait for its request, on a socket pair: no process is forked."""

import os
import select
import socket
import threading

from unstuck.warm import warm_process


def pair():
    return socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)


def test_a_spare_dropped_after_it_said_ready_ends_quietly():
    # The warm process closes its end with the ready word unread (the spare is replaced by a fresher one,
    # or the server stops): the connection is reset, which once printed a traceback into the log.
    warm_end, spare_end = pair()

    def drop_once_ready():
        select.select([warm_end], [], [], 30)
        warm_end.close()

    dropper = threading.Thread(target=drop_once_ready)
    dropper.start()
    assert warm_process.wait_for_request(spare_end) == (b"", [])
    dropper.join()
    spare_end.close()


def test_a_spare_dropped_before_it_is_ready_ends_quietly():
    warm_end, spare_end = pair()
    warm_end.close()
    assert warm_process.wait_for_request(spare_end) == (b"", [])
    spare_end.close()


def test_a_spare_gets_its_request_and_descriptor():
    warm_end, spare_end = pair()
    with open(__file__) as f:
        socket.send_fds(warm_end, [b'{"op": "fork"}'], [f.fileno()])
    data, fds = warm_process.wait_for_request(spare_end)
    assert data == b'{"op": "fork"}' and len(fds) == 1
    assert warm_end.recv(1) == warm_process.SPARE_READY
    for s in (warm_end, spare_end):
        s.close()
    os.close(fds[0])
