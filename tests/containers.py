"""Helpers for tests that run real containers: labels, ports, app copies, a handle on a served container.

Everything the tests create carries the label io.unstuck.test=<session id>, so it can be removed at
teardown even when a test fails, and swept once more at the end of the session.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import stat
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import docker

from repo import REPO

LABEL = "io.unstuck.test"
SESSION = uuid.uuid4().hex[:10]
# How often `status_answer` asks when an exec comes back without output.
STATUS_ASKS = 3


def status_answer(ask) -> tuple[int, str]:
    """`ask()` (an exec of `unstuck status --json`: its exit code and output) until it prints something, at most
    STATUS_ASKS times. `unstuck status` always prints (JSON, or a line saying why not); Docker's exec sometimes
    returns a short process's exit code without its output (moby/moby#27289; CI saw exit 0 and no output once on
    20.10): an empty answer is asked again, not taken for "down"."""
    for _ in range(STATUS_ASKS):
        code, out = ask()
        if out.strip():
            break
    return code, out


def default_base_image() -> str:
    match = re.search(r"^ARG BASE_IMAGE=(\S+)", (REPO / "Dockerfile").read_text(), re.M)
    return match.group(1)


def remove_all(containers) -> None:
    """Remove the containers a test started, even those already gone."""
    for container in containers:
        try:
            container.remove(force=True)
        except docker.errors.NotFound:
            pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def readable_copy(src: Path, dst: Path) -> None:
    """Copy the sample app with the modes a checkout has (pytest's temp dirs are 0700, which the
    container's non-root user could not read)."""
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for path in [dst, *dst.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    for parent in dst.parents:
        if parent == Path("/tmp") or parent == parent.parent:
            break
        parent.chmod(parent.stat().st_mode | stat.S_IXOTH | stat.S_IROTH)


# Run in the container by Served.sockets: every TCP socket on the port, its state, queues and owners.
SOCKETS_SCRIPT = r"""
import os, sys
port = int(sys.argv[1])
states = {"01": "ESTABLISHED", "06": "TIME_WAIT", "08": "CLOSE_WAIT", "0A": "LISTEN", "07": "CLOSE",
          "04": "FIN_WAIT1", "05": "FIN_WAIT2", "09": "LAST_ACK", "0B": "CLOSING", "03": "SYN_RECV"}
owners = {}
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        name = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode()[:60]
        for fd in os.listdir(f"/proc/{pid}/fd"):
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
            if link.startswith("socket:["):
                owners.setdefault(link[8:-1], []).append(f"{pid}:{fd} {name}")
    except OSError:
        continue
for table in ("/proc/net/tcp", "/proc/net/tcp6"):
    for line in open(table).read().splitlines()[1:]:
        f = line.split()
        local, remote, st, queues, inode = f[1], f[2], f[3], f[4], f[9]
        if int(local.split(":")[1], 16) != port and int(remote.split(":")[1], 16) != port:
            continue
        tx, rx = (int(q, 16) for q in queues.split(":"))
        print(states.get(st, st), f"remote={int(remote.split(':')[1], 16)} tx={tx} rx={rx}",
              "owners=" + "; ".join(owners.get(inode, ["none"])))
# The hand-over listeners (unix sockets under the run directory) and who holds them; every process's state.
for line in open("/proc/net/unix").read().splitlines()[1:]:
    f = line.split()
    if len(f) >= 8 and "handoff" in f[7]:
        print("UNIX", f[7], "state", f[5], "flags", f[3], "owners=" + "; ".join(owners.get(f[6], ["none"])))
for pid in sorted(filter(str.isdigit, os.listdir("/proc")), key=int):
    try:
        stat = open(f"/proc/{pid}/stat").read()
        name = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode()[:50]
        wchan = open(f"/proc/{pid}/wchan").read()
        threads = len(os.listdir(f"/proc/{pid}/task"))
    except OSError:
        continue
    print("PROC", pid, stat[stat.rindex(")") + 2], f"wchan={wchan} threads={threads}", name)
"""


@dataclass
class Served:
    container: docker.models.containers.Container
    port: int
    app_dir: Path
    published: dict[int, int] = field(default_factory=dict)  # other container port -> host port

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def logs(self) -> str:
        try:
            return self.container.logs().decode(errors="replace")
        except docker.errors.APIError as exc:
            return f"(no logs: {exc})"

    def logs_tail(self, lines: int = 40, leave_out: str | None = None) -> str:
        """The last lines of the container's log; those containing `leave_out` (e.g. access lines) skipped."""
        said = [line for line in self.logs().splitlines() if leave_out is None or leave_out not in line]
        without = f" without lines containing {leave_out!r}" if leave_out is not None else ""
        return f"container logs{without} (tail):\n" + "\n".join(said[-lines:])

    def sockets(self, port: int = 8000) -> str:
        """Who holds each TCP connection of `port` in the container, with its queues (from /proc: the image has
        no `ss`): for a test's failure message when a request got no answer (queued unaccepted in LISTEN's
        backlog, or held by a process that does not read it)."""
        # As the app's user: root in the container lacks CAP_SYS_PTRACE, so it cannot see other users' descriptors.
        return self.exec("python3", "-c", SOCKETS_SCRIPT, str(port), user="1000")[1]

    def exec(self, *cmd: str, user: str | None = None) -> tuple[int, str]:
        result = self.container.exec_run(list(cmd), user=user or "")
        return result.exit_code, result.output.decode(errors="replace")

    def status(self) -> dict:
        """`unstuck status --json` inside the container: the server's state and counters (what tests assert
        on, rather than log wording); {"state": "down", "unreadable": ...} when it cannot be read."""
        code, out = status_answer(lambda: self.exec("unstuck", "status", "--json"))
        try:
            return json.loads(out)
        except ValueError:
            return {"state": "down", "unreadable": out or f"no output (exit code {code})", "code": code}

    def counter(self, name: str) -> int:
        return self.status().get("counters", {}).get(name, 0)

    def wait_status(self, what: str, check, timeout: float = 30.0) -> dict:
        """Poll the status until `check(status)` holds; return that status."""
        from waiting import wait_until

        seen: dict = {}

        def probe():
            seen.clear()
            seen.update(self.status())
            if "unreadable" in seen:  # no counters to check yet (the server restarting, or exec lost it)
                return False, json.dumps(seen)[:600]
            return bool(check(seen)), json.dumps(seen)[:600]

        wait_until(what, probe, timeout=timeout)
        return dict(seen)

    def wait_state(self, wanted: str, timeout: float = 30.0) -> dict:
        return self.wait_status(f"unstuck status says {wanted}", lambda s: s.get("state") == wanted, timeout)


