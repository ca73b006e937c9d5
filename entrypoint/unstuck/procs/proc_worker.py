"""One Procfile worker under supervisord: `unstuck proc NAME COMMAND` runs COMMAND and keeps it running
(supervisord's config passes it as `unstuck proc NAME --encoded BASE64`, see encode_command).

supervisord runs this wrapper (never the command itself), so supervisord's own states stay RUNNING
whatever the worker does; the decisions are proc_states.ProcMachine's, this is its shell:
- the command runs through `sh -c` in APP_DIR (as honcho and foreman run Procfile lines), in a session
  of its own so that a stop reaches its whole process tree (celery's pool), and dies with this wrapper;
- its output goes to the container's log, each line prefixed with the worker's name, and the last lines
  are kept: when it exits, the traceback in them gives the status its exception and file:line;
- SIGHUP (sent by the reload server with each change batch) restarts it on the new code, SIGTERM
  (supervisord's stop) stops it within UNSTUCK_WORKER_GRACE, then SIGKILL;
- its state is a JSON file in the run directory that `unstuck status` reads.
"""

from __future__ import annotations

import base64
import binascii
import collections
import os
import re
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

from unstuck import config as config_mod
from unstuck import state
from unstuck.errors import traceback_text
from unstuck.procs.proc_states import ProcMachine
from unstuck.processes import die_with_parent, set_process_name

TAIL_LINES = 200
MAX_LINE = 64 * 1024  # output without a newline is logged in pieces this long, never piled up in memory
# A command with none of these is one program: the shell execs it, so the worker's pid is the program's
# (a `kill` of it reaches the program, not a shell that would leave the program running).
_SHELL_SYNTAX = re.compile(r"[;&|()<>`$\n]|^\s*\w+=|^\s*(?:!|\{|if|while|until|for|case)(?:\s|$)")


# How supervisord's config passes a Procfile line: in base64 (letters, digits, '-', '_', '='), which neither its
# config parser (inline comments after ' ;' or ' #', '%' expansions) nor its shlex split of `command=` change.
ENCODED = "--encoded"


def encode_command(command: str) -> str:
    return base64.urlsafe_b64encode(command.encode()).decode("ascii")


def decode_command(encoded: str) -> str:
    return base64.urlsafe_b64decode(encoded.encode("ascii")).decode()


def shell_command(command: str) -> list[str]:
    return ["/bin/sh", "-c", command if _SHELL_SYNTAX.search(command) else f"exec {command}"]


def command_env(settings: config_mod.Settings) -> dict[str, str]:
    env = dict(os.environ)
    # APP_DIR is the import root, as for the web app (`celery -A app.tasks` imports app/tasks.py).
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(settings.app_dir), env.get("PYTHONPATH")) if p)
    env["PYTHONUNBUFFERED"] = "1"  # lines reach the log (and the traceback the status) as written
    return env


def state_dir(settings: config_mod.Settings) -> Path:
    return settings.run_dir / "procs"


class ProcWorker:
    def __init__(self, settings: config_mod.Settings, name: str, command: str) -> None:
        self.settings = settings
        self.name = name
        self.command = command
        self.machine = ProcMachine(self, settings.worker_grace, settings.backoff_max)
        self.proc: subprocess.Popen | None = None
        self.buffer = b""
        self.tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        self.last_error: dict | None = None
        self.selector = selectors.DefaultSelector()
        self.state_file = state_dir(settings) / f"{name}.json"
        self.published: str | None = None  # the state last written to the state file
        self.start_error: str | None = None  # why the last spawn could not start the command
        self.said: set[tuple[str, str]] = set()  # the unexpected errors said already (each once)

    # -- Ops -----------------------------------------------------------------------------------------

    def now(self) -> float:
        return time.monotonic()

    def spawn(self) -> None:
        self.tail.clear()
        try:
            self.proc = subprocess.Popen(shell_command(self.command), cwd=str(self.settings.app_dir),
                                         env=command_env(self.settings),
                                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                         start_new_session=True, preexec_fn=die_with_parent)
        except (OSError, subprocess.SubprocessError) as exc:
            # Told to the machine as an exit (reap, on the loop: never from inside the machine's own call),
            # so it is retried with the crash backoff instead of shown "running" with nothing running.
            self.start_error = f"cannot start {self.command!r}: {getattr(exc, 'strerror', None) or exc}"
            return
        os.set_blocking(self.proc.stdout.fileno(), False)
        self.selector.register(self.proc.stdout, selectors.EVENT_READ)
        self.say(f"started (pid {self.proc.pid}): {self.command}")
        self.publish()

    def signal(self, signum: int) -> None:
        if self.proc is not None and self.proc.returncode is None:
            try:
                os.killpg(self.proc.pid, signum)  # its session: the shell, the command and its children
            except ProcessLookupError:
                pass

    # -- output and exits --------------------------------------------------------------------------

    def say(self, message: str) -> None:
        print(f"INFO:     [unstuck] {self.name}: {message}", flush=True)

    def drain(self, final: bool = False) -> None:
        if self.proc is None:
            return
        try:
            data = self.proc.stdout.read(MAX_LINE)  # None: nothing now; b"": EOF
        except (BlockingIOError, ValueError):
            data = None
        if data == b"":
            # Every writer closed the pipe (a command that redirects its own output): it stays readable at
            # EOF, so it leaves the selector, or the loop would spin on it until the worker exits.
            self._forget_output()
        self.buffer += data or b""
        *lines, self.buffer = self.buffer.split(b"\n")
        while len(self.buffer) >= MAX_LINE:
            lines.append(self.buffer[:MAX_LINE])
            self.buffer = self.buffer[MAX_LINE:]
        if final and self.buffer:
            lines, self.buffer = lines + [self.buffer], b""
        out = sys.stdout
        for raw in lines:
            line = raw.decode(errors="replace").rstrip("\r")
            self.tail.append(line)
            out.write(f"{self.name} | {line}\n")
        out.flush()

    def _forget_output(self) -> None:
        try:
            self.selector.unregister(self.proc.stdout)
        except (KeyError, ValueError):
            pass  # already

    def reap(self) -> None:
        if self.proc is None and self.start_error is not None:
            error, self.start_error = self.start_error, None
            self.last_error = {"headline": error, "exc_type": None, "message": error, "file": None, "line": None,
                               "at": time.time()}
            self.machine.exited(127)  # as a shell says it cannot run a command
            self.say(f"{error}; restarting in {self.machine.restart_delay:g} s" if self.machine.state == "backoff"
                     else f"{error}; trying again at once")
            self.publish()
            return
        if self.proc is None or self.proc.poll() is None:
            return
        proc, code = self.proc, self.proc.returncode
        try:
            # What it started and left behind (a queue's scheduler, a job's process) goes with it.
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.drain(final=True)
        self._forget_output()
        proc.stdout.close()
        self.proc = None
        expected = self.machine.state == "stopping"
        failure = None if expected else self.guarded(
            "reading its last lines for a traceback", lambda: traceback_text.parse(list(self.tail), self.settings.app_dir))
        how = f"exited with code {code}" if code >= 0 else f"was killed by {signal.Signals(-code).name}"
        if not expected:
            self.last_error = {"headline": failure.headline() if failure else f"the worker {how}",
                               "exc_type": failure.exc_type if failure else None,
                               "message": failure.message if failure else how,
                               "file": failure.file if failure else None, "line": failure.line if failure else None,
                               "at": time.time()}
        self.machine.exited(code)
        if expected:
            self.say(f"stopped ({how})")
        elif self.machine.state == "backoff":
            self.say(f"{how}; restarting in {self.machine.restart_delay:g} s (crash {self.machine.backoff.crashes} "
                     f"in a row){': ' + failure.headline() if failure else ''}")
        else:
            self.say(f"{how}{': ' + failure.headline() if failure else ''}; restarted at once")
        self.publish()

    def publish(self) -> None:
        m = self.machine
        self.published = m.shown_state()

        def write() -> None:
            try:
                state.write(self.state_file, name=self.name, command=self.command, state=m.shown_state(),
                            worker_pid=self.proc.pid if self.proc else None, restarts=m.restarts,
                            reloads=m.reloads, crashes=m.backoff.crashes, restart_delay=m.restart_delay,
                            last_exit=m.last_exit, last_error=self.last_error)
            except OSError:
                pass

        self.guarded("writing its state for unstuck status", write)

    def guarded(self, what: str, step):
        """Run one step of the loop; an unexpected error in it is said once (one line) and costs that step
        only: the wrapper, and with it the worker, lives on. None when it failed."""
        try:
            return step()
        except Exception as exc:  # noqa: BLE001 - one event's failure must not end the wrapper and its worker
            key = (what, f"{type(exc).__name__}: {exc}")
            if key not in self.said:
                self.said.add(key)
                print(f"ERROR:    [unstuck] {self.name}: {what} failed ({key[1]}); carrying on", flush=True)
            return None

    # -- the loop ------------------------------------------------------------------------------------

    def run(self) -> int:
        self.state_file.parent.mkdir(mode=0o700, exist_ok=True)
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        os.set_blocking(wake_r, False)
        signal.set_wakeup_fd(wake_w)
        received: list[int] = []
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD):
            signal.signal(signum, lambda s, _f: received.append(s))
        self.selector.register(wake_r, selectors.EVENT_READ)
        self.guarded("starting the worker", self.machine.start)
        while not self.machine.finished:
            due = self.machine.next_deadline()
            timeout = 1.0 if due is None else max(0.0, min(1.0, due - self.now()))
            for key, _ in self.selector.select(timeout):
                if key.fileobj == wake_r:
                    try:
                        os.read(wake_r, 512)
                    except BlockingIOError:
                        pass
                else:
                    self.guarded("reading its output", self.drain)
            while received:
                signum = received.pop(0)
                if signum == signal.SIGHUP:
                    self.say("restarting on the new code")
                    self.guarded("restarting the worker", self.machine.restart)
                    self.publish()
                elif signum in (signal.SIGTERM, signal.SIGINT):
                    self.guarded("stopping the worker", self.machine.stop)
                    self.publish()
            self.guarded("handling its exit", self.reap)
            self.guarded("acting on its timers", self.machine.on_timers)
            if self.machine.shown_state() != self.published:  # e.g. "starting" became "running"
                self.publish()
        self.state_file.unlink(missing_ok=True)
        return 0


def parse_args(argv: list[str]) -> tuple[str, str] | None:
    """(name, command) from `NAME COMMAND` or `NAME --encoded BASE64`; None when it is neither."""
    if len(argv) == 3 and argv[1] == ENCODED:
        try:
            return argv[0], decode_command(argv[2])
        except (binascii.Error, UnicodeError, ValueError):
            return None
    return (argv[0], argv[1]) if len(argv) == 2 else None


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args is None:
        print(f"usage: unstuck proc NAME COMMAND (or NAME {ENCODED} BASE64)", file=sys.stderr)
        return 2
    name, command = args
    try:
        settings = config_mod.load(check_dirs=False)
    except config_mod.ConfigError as exc:
        print(f"unstuck: error: {exc}", file=sys.stderr)
        return 2

    set_process_name(f"unstuck-{name}"[:15])
    return ProcWorker(settings, name, command).run()
