"""`unstuck` command line: run (the image's entrypoint), serve, worker, status, unfatal."""

from __future__ import annotations

import dataclasses
import os
import secrets
import sys
import time
from pathlib import Path

from unstuck import config, state

USAGE = """usage: unstuck COMMAND
  run      validate settings, then run supervisord in the foreground (the image's entrypoint)
  check    validate settings only and print them
  status   print the server's state (exit 0 when serving, 1 otherwise); --quiet, --json
  deps     install what the project in APP_DIR declares into the project environment now
  serve    the reload server supervisord runs (internal)
  worker   one app generation (internal)
  forkserver  the warm process that forks workers (internal)
  unfatal  supervisord event listener that restarts FATAL programs (internal)"""


def fail(message: str) -> int:
    print(f"unstuck: error: {message}", file=sys.stderr)
    return 2


def private_run_dir(settings: config.Settings) -> config.Settings:
    """The control socket's directory must be ours alone; fall back when the image's one is not writable
    (e.g. the container runs with another --user)."""
    for candidate in (settings.run_dir, Path(f"/tmp/unstuck-{os.getuid()}")):
        try:
            candidate.mkdir(mode=0o700, parents=True, exist_ok=True)
            candidate.chmod(0o700)
        except OSError:
            continue
        # Ours alone: a directory someone else created (in /tmp) is not used.
        if candidate.stat().st_uid == os.getuid() and os.access(candidate, os.W_OK | os.X_OK):
            return dataclasses.replace(settings, run_dir=candidate)
    raise config.ConfigError(f"UNSTUCK_RUN_DIR={str(settings.run_dir)!r} is not writable by uid {os.getuid()}; "
                             "point it at a directory this user owns")


def cmd_run(args: list[str]) -> int:
    from unstuck import supervisord_conf

    try:
        settings = private_run_dir(config.load())
    except config.ConfigError as exc:
        return fail(str(exc))
    os.environ["UNSTUCK_RUN_DIR"] = str(settings.run_dir)
    settings.state_file.unlink(missing_ok=True)
    settings.supervisord_conf.touch(mode=0o600)
    settings.supervisord_conf.write_text(supervisord_conf.render(settings, secrets.token_urlsafe(24)))
    # supervisorctl looks for <venv>/etc/supervisord.conf first: point it at ours so a plain
    # `supervisorctl status` works in the container.
    try:
        default_conf = Path(sys.prefix, "etc", "supervisord.conf")
        default_conf.parent.mkdir(exist_ok=True)
        default_conf.unlink(missing_ok=True)
        default_conf.symlink_to(settings.supervisord_conf)
    except OSError:
        pass
    # supervisord as PID 1 (nodaemon), through a launcher that shortens its loop tick (see that module).
    os.execv(sys.executable, [sys.executable, "-m", "unstuck.supervisord_launch", "--nodaemon",
                              "--configuration", str(settings.supervisord_conf)])


def cmd_check(args: list[str]) -> int:
    try:
        settings = config.load()
    except config.ConfigError as exc:
        return fail(str(exc))
    for f in dataclasses.fields(settings):
        print(f"{f.name}={getattr(settings, f.name)}")
    return 0


def cmd_serve(args: list[str]) -> int:
    from unstuck.logs import setup
    from unstuck.reloader import Reloader

    try:
        settings = config.load()
    except config.ConfigError as exc:
        return fail(str(exc))
    from unstuck.worker import set_process_name

    setup(settings.log_level)
    set_process_name("unstuck-serve")
    return Reloader(settings).run()


def cmd_deps(args: list[str]) -> int:
    """Install the project's dependencies now (the image build pre-installs the sample app's this way)."""
    from unstuck import dependencies
    from unstuck.logs import setup

    try:
        settings = config.load()
    except config.ConfigError as exc:
        return fail(str(exc))
    setup(settings.log_level)
    outcome = dependencies.install_now(settings.app_dir, env=settings.project_env, compile_now=True)
    if not outcome.ok:
        # One line: uv's own lines are in the log above it.
        detail = " ".join(line.strip() for line in outcome.error.splitlines() if line.strip())
        detail = f": {detail}" if detail and outcome.error != outcome.summary else ""
        print(f"unstuck: error: {outcome.summary}{detail}", file=sys.stderr)
        return 1
    print(f"unstuck: {outcome.summary}")
    return 0


def find_state() -> tuple[dict | None, Path]:
    env_dir = os.environ.get("UNSTUCK_RUN_DIR", "").strip()
    candidates = [Path(env_dir)] if env_dir else []
    candidates += [Path("/run/unstuck"), Path(f"/tmp/unstuck-{os.getuid()}")]
    for directory in candidates:
        data = state.read(directory / "state.json")
        if data is not None:
            return data, directory / "state.json"
    return None, candidates[0]


def format_status(data: dict, now: float) -> str:
    lines = [f"state:        {data['state']}", f"app:          {data.get('app_module')} on port {data.get('port')}"]
    last = data.get("last_reload")
    if last:
        outcome = "ok" if last.get("ok") else "failed"
        lines.append(f"last reload:  {last['seconds']:.3f} s, {outcome}, {now - last['at']:.0f} s ago ({last['trigger']})")
    if data.get("error"):
        lines.append(f"error:        {data['error']}")
    if data.get("installing"):
        lines.append("dependencies: installing")
    if data.get("dependencies_error"):
        lines.append(f"dependencies: {data['dependencies_error']}")
    if data.get("crashes"):
        lines.append(f"crashes:      {data['crashes']} in a row")
    return "\n".join(lines)


def status_of_plain_uvicorn(quiet: bool) -> int:
    """Plain `uvicorn --reload` publishes no state: all that can be told is whether the port answers."""
    import http.client

    port = int(os.environ.get("PORT", "8000") or 8000)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", "/")
        code = conn.getresponse().status
        serving = code < 500
    except OSError as exc:
        code, serving = str(exc), False
    if not quiet:
        print(f"state:        {'serving' if serving else 'down'} (UNSTUCK_RELOADER=uvicorn: plain uvicorn --reload; "
              f"GET / on port {port}: {code})")
    return 0 if serving else 1


def cmd_status(args: list[str]) -> int:
    import json

    quiet, as_json = "--quiet" in args, "--json" in args
    if os.environ.get("UNSTUCK_RELOADER", "").strip().lower() == "uvicorn":
        return status_of_plain_uvicorn(quiet)
    data, path = find_state()
    if data is None or not state.pid_alive(int(data.get("pid", 0))):
        if not quiet:
            print(f"state:        down (no running reload server; looked for {path})")
        return 1
    if as_json:
        print(json.dumps(data, indent=2))
    elif not quiet:
        print(format_status(data, time.time()))
    return 0 if data["state"] in ("serving", "reloading") else 1


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "worker":
        from unstuck import worker

        return worker.main(rest)
    if command == "forkserver":
        from unstuck import forkserver

        return forkserver.main(rest)
    if command == "unfatal":
        from unstuck import unfatal

        return unfatal.main()
    handlers = {"run": cmd_run, "check": cmd_check, "serve": cmd_serve, "status": cmd_status, "deps": cmd_deps}
    if command not in handlers:
        print(f"unstuck: error: unknown command {command!r}; run 'unstuck --help' for the list", file=sys.stderr)
        return 2
    return handlers[command](rest)
