"""UNSTUCK_DEBUG=1: a debugpy client can attach to the app, and attach again after a reload."""

import json
import socket

from editor import save_in_place
from waiting import has_text, wait_for, wait_until


def dap_initialize(port: int) -> dict:
    """Send a Debug Adapter Protocol `initialize` request; return the adapter's response."""
    body = json.dumps({"seq": 1, "type": "request", "command": "initialize",
                       "arguments": {"adapterID": "debugpy", "clientID": "unstuck-test"}}).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        reader = conn.makefile("rb")
        while True:
            headers = {}
            while (line := reader.readline().strip()) != b"":
                name, _, value = line.decode().partition(":")
                headers[name.strip().lower()] = value.strip()
            if "content-length" not in headers:
                raise ConnectionError("the debug port closed without a DAP response")
            message = json.loads(reader.read(int(headers["content-length"])))
            if message.get("type") == "response" and message.get("command") == "initialize":
                return message


def attachable(port: int):
    def probe():
        try:
            response = dap_initialize(port)
        except (OSError, ValueError) as exc:
            return False, f"{type(exc).__name__}: {exc}"
        return response.get("success") is True, json.dumps(response)[:300]

    return probe


def test_debugger_can_attach_before_and_after_a_reload(start_container):
    served = start_container(env={"UNSTUCK_DEBUG": "1"}, extra_ports=(5678,))
    debug_port = served.published[5678]
    wait_for(served.url(), has_text(200, "Hello from unstuck"), on_timeout=served.logs_tail)
    wait_until("a DAP client can initialize with the first generation", attachable(debug_port))

    main = served.app_dir / "main.py"
    save_in_place(main, main.read_text().replace("Hello from unstuck", "reloaded under the debugger"))
    wait_for(served.url(), has_text(200, "reloaded under the debugger"), on_timeout=served.logs_tail)
    wait_until("the new generation listens for the debugger",
               lambda: (served.logs().count("debugger listening on 0.0.0.0:5678") >= 2, served.logs_tail(6)))
    wait_until("a DAP client can initialize with the new generation", attachable(debug_port))
