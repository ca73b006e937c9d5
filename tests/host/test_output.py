"""A generation whose log nobody reads goes on answering (output.py), with a real worker on this machine.

Its stdout is a pipe (supervisord's, in the container); when the reader falls behind, the pipe fills. The
worker's access lines are written on its event loop: without the output thread, the request whose line does
not fit waits for the reader, and so does every other request of that generation."""

import fcntl
import os
import subprocess
import sys
import time

import httpx

from repo import REPO

APP = '''\
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    print("the app prints a line for each request, as apps do", scope["path"])
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"answered"})
'''
F_SETPIPE_SZ, F_GETPIPE_SZ = 1031, 1032  # Linux


def test_requests_are_answered_while_nobody_reads_the_log_and_the_log_catches_up_in_order(listening, tmp_path):
    (tmp_path / "main.py").write_text(APP)
    out_r, out_w = os.pipe()
    fcntl.fcntl(out_w, F_SETPIPE_SZ, 4096)  # the smallest pipe: it fills after a few dozen requests
    pipe_bytes = fcntl.fcntl(out_w, F_GETPIPE_SZ)
    report_r, report_w = os.pipe()
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(REPO / "entrypoint"), "APP_DIR": str(tmp_path),
           "APP_MODULE": "main:app", "UNSTUCK_GRACE": "0.5"}
    proc = subprocess.Popen([sys.executable, "-m", "unstuck", "worker", "--listen-fd", str(listening.fileno()),
                             "--report-fd", str(report_w), "--parent-pid", str(os.getpid())],
                            pass_fds=(listening.fileno(), report_w), env=env, stdout=out_w, stderr=out_w)
    os.close(out_w)
    os.close(report_w)
    try:
        with os.fdopen(report_r) as reports:
            outcome = next((line for line in iter(reports.readline, "") if '"ready"' in line or '"failed"' in line), "")
            assert '"ready"' in outcome, f"the worker did not become ready: {outcome!r}"
            url = f"http://127.0.0.1:{listening.getsockname()[1]}/"
            # Each request writes two lines (the app's and the access line): several times what the pipe holds.
            requests = 4 * pipe_bytes // 100
            with httpx.Client(timeout=10) as client:  # a request stalled by the log: ReadTimeout
                for i in range(requests):
                    assert client.get(f"{url}r{i}").text == "answered"
            # Now the log is read: all of it, in order (under the limit nothing is dropped).
            os.set_blocking(out_r, False)
            text, deadline = b"", time.monotonic() + 30
            last = f'"GET /r{requests - 1} HTTP/1.1" 200'.encode()
            while last not in text and time.monotonic() < deadline:
                try:
                    text += os.read(out_r, 1 << 16) or b""
                except BlockingIOError:
                    time.sleep(0.01)  # polling a pipe for data, bounded by the deadline above
            printed = [line.split()[-1] for line in text.decode().splitlines() if "the app prints" in line]
            assert printed == [f"/r{i}" for i in range(requests)], f"{len(printed)} of {requests} lines, in order?"
            assert f'"GET /r{requests - 1} HTTP/1.1" 200' in text.decode()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        os.close(out_r)
