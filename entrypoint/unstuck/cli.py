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
  status   print the server's state; exit 0 when serving (or reloading), 1 otherwise
             --quiet  print nothing, only the exit code (the image's HEALTHCHECK: a broken app is unhealthy)
             --json   print the whole state as JSON
             --live   exit 0 while the reload server runs, whatever your app's state (Kubernetes liveness)
             --ready  exit 0 while the port answers, with your app or its error page (Kubernetes readiness)
  wait     wait until the port answers (the app, or its error page); --timeout SECONDS (default 300)
  deps     install what the project in APP_DIR declares into the project environment now
  serve    the reload server supervisord runs (internal)
  worker   one app generation (internal)
  warm-process  the warm process that forks workers (internal)
  proc     one Procfile worker, kept running by unstuck (internal)
  unfatal  supervisord event listener that restarts FATAL programs (internal)"""


def fail(message: str) -> int:
    print(f"unstuck: error: {message}", file=sys.stderr)
    return 2


def private_run_dir(settings: config.Settings, fallback: Path | None = None) -> config.Settings:
    """The control socket's directory must be ours alone; fall back when the image's one is not writable
    (e.g. the container runs with another --user)."""
    for candidate in (settings.run_dir, fallback or Path(f"/tmp/unstuck-{os.getuid()}")):
        if candidate.is_symlink():
            continue  # planted in /tmp by someone else: mkdir, chmod and stat would all follow it
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
    from unstuck.supervision import supervisord_conf

    try:
        settings = private_run_dir(config.load())
    except config.ConfigError as exc:
        return fail(str(exc))
    os.environ["UNSTUCK_RUN_DIR"] = str(settings.run_dir)
    settings.state_file.unlink(missing_ok=True)
    settings.supervisord_conf.touch(mode=0o600)
    settings.supervisord_conf.write_text(supervisord_conf.render(settings, secrets.token_urlsafe(24)))
    from unstuck.procs.proc_control import write_procs_conf

    _, error = write_procs_conf(settings)
    if error is not None:  # the web app is served all the same; the status and the log say what is wrong
        (settings.run_dir / "procs.conf").write_text("; the Procfile could not be read\n")
        print(f"ERROR:    [unstuck] {error}; no workers started", flush=True)
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
    os.execv(sys.executable, [sys.executable, "-m", "unstuck.supervision.supervisord_launch", "--nodaemon",
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
    from unstuck.reload.reloader import Reloader

    try:
        settings = config.load()
    except config.ConfigError as exc:
        return fail(str(exc))
    from unstuck.processes import set_process_name

    setup(settings.log_level)
    set_process_name("unstuck-serve")
    return Reloader(settings).run()


def cmd_deps(args: list[str]) -> int:
    """Install the project's dependencies now (the image build pre-installs the sample app's this way)."""
    from unstuck.project import dependencies
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
    app = data.get("app") or {}
    name = app.get("import") or data.get("app_module") or "not found yet"
    found = f" ({app.get('interface')}; {app.get('reason')})" if app.get("interface") else ""
    lines = [f"state:        {data['state']}", f"app:          {name} on port {data.get('port')}{found}"]
    last = data.get("last_reload")
    if last:
        outcome = "ok" if last.get("ok") else "failed"
        lines.append(f"last reload:  {last['seconds']:.3f} s, {outcome}, {now - last['at']:.0f} s ago ({last['trigger']})")
        if last.get("phases"):
            lines.append("phases:       " + ", ".join(f"{k} {v:.3f}" for k, v in last["phases"].items())
                         + " (s after the save)")
    watcher = data.get("watcher")
    if watcher:
        seen = watcher.get("last_change")
        lines.append(f"watcher:      {watcher.get('mode')} ({watcher.get('reason')})"
                     + (f", last change {now - seen:.0f} s ago" if seen else ", no change yet")
                     + (f", {watcher['restarts']} restarts" if watcher.get("restarts") else ""))
        if watcher.get("safety_poll_ms"):
            missed = watcher.get("missed_by_events")
            lines.append(f"safety poll:  every {watcher['safety_poll_ms']} ms, "
                         + (f"{missed} change(s) no inotify event reported (first: {watcher.get('first_missed')})"
                            if missed else "no change missed by inotify events so far"))
    if data.get("error"):
        lines.append(f"error:        {data['error']}")
        if (data.get("failure") or {}).get("hint"):
            lines.append(f"hint:         {data['failure']['hint']}")
    chosen = data.get("dependency_set") or {}
    if chosen.get("chosen"):
        lines.append(f"dependencies: {chosen['chosen']}")
        if chosen.get("left_out"):
            lines.append(f"dependencies: {chosen['left_out']}")
    if data.get("installing"):
        lines.append("dependencies: installing")
    if data.get("dependencies_error"):
        lines.append(f"dependencies: {data['dependencies_error']}")
    if data.get("dependencies_warning"):
        lines.append(f"dependencies: {data['dependencies_warning']}")
    if data.get("crashes"):
        lines.append(f"crashes:      {data['crashes']} in a row")
    for note in (data.get("fast_path") or [])[-1:]:  # the latest: each narrows the fast path one step more
        lines.append(f"fast path:    {note}")
    if data.get("procfile_error"):
        lines.append(f"procfile:     {data['procfile_error']}")
    release = data.get("release")
    if release:
        lines.append(f"release:      {format_release(release, now)}")
    if data.get("procs_waiting") and not data.get("procs"):
        lines.append(f"workers:      {data['procs_waiting']}")
    for name, proc in sorted((data.get("procs") or {}).items()):
        error = (proc.get("last_error") or {}).get("headline")
        lines.append(f"worker {name}: {proc['state']}, {proc.get('restarts', 0)} restarts"
                     + (f", last error: {error}" if error else ""))
    return "\n".join(lines)


def format_release(release: dict, now: float) -> str:
    last = release.get("last")
    if release["state"] == "running":
        stopping = f", stopping it: {release['stopping']}" if release.get("stopping") else ""
        return f"running for {now - release['since']:.0f} s{stopping}: {release['command']}"
    if last is None:
        return f"not run yet: {release['command']}"
    when = f"in {last['seconds']:.1f} s, {now - last['at']:.0f} s ago ({last['trigger']})"
    if last["ok"]:
        return f"ok {when}"
    if last.get("timed_out"):
        return f"stopped {when}: {last['error']}; it runs again with the next save"
    return f"failed (exit code {last['code']}) {when}: {last['error']}; it runs again with the next save"


def read_procs(run_dir: Path) -> dict:
    """The Procfile workers' states, as their wrappers publish them."""
    procs = {}
    for path in sorted((run_dir / "procs").glob("*.json")):
        data = state.read(path)
        if data is not None and state.pid_alive(int(data.get("pid") or 0)):
            procs[data["name"]] = data
        elif data is not None:
            procs[data["name"]] = {**data, "state": "down"}
    return procs


# The questions `unstuck status` can answer with its exit code. The default one (is the app serving?) suits
# the HEALTHCHECK; Kubernetes needs two others, because a pod whose app is broken must neither be restarted
# (that cannot fix the code) nor be cut off from its Service (it shows the error to whoever asks).
STATUS_OPTIONS = ("--quiet", "--json", "--live", "--ready")
# States in which a request gets an answer: the app, or the 503 error page (a reload keeps the old one serving).
ANSWERING_STATES = ("serving", "reloading", "broken")


def status_of_plain_uvicorn(quiet: bool, question: str) -> int:
    """Plain `uvicorn --reload` publishes no state: all that can be told is whether the port answers."""
    import http.client
    import socket

    port = int(os.environ.get("PORT", "8000") or 8000)
    if question == "live":
        # uvicorn's reloader process holds the listening socket for its whole life, even while the app
        # cannot be imported: a connection that is accepted means it runs.
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
            code, ok = "accepts connections", True
        except OSError as exc:
            code, ok = str(exc), False
    else:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/")
            code = conn.getresponse().status
            ok = True if question == "ready" else code < 500
        except OSError as exc:
            code, ok = str(exc), False
    if not quiet:
        print(f"state:        {'serving' if ok else 'down'} (UNSTUCK_RELOADER=uvicorn: plain uvicorn --reload; "
              f"port {port}: {code})")
    return 0 if ok else 1


def cmd_status(args: list[str]) -> int:
    import json

    unknown = [a for a in args if a not in STATUS_OPTIONS]
    if unknown:
        # A mistyped probe flag must not silently fall back to "serving?", which fails while the app is broken.
        return fail(f"status: unknown option {unknown[0]!r}; use {', '.join(STATUS_OPTIONS)}")
    if "--live" in args and "--ready" in args:
        return fail("status: --live and --ready ask different questions; use one of them")
    quiet, as_json = "--quiet" in args, "--json" in args
    question = "live" if "--live" in args else "ready" if "--ready" in args else "serving"
    if os.environ.get("UNSTUCK_RELOADER", "").strip().lower() == "uvicorn":
        return status_of_plain_uvicorn(quiet, question)
    data, path = find_state()
    if data is None or not state.pid_alive(int(data.get("pid", 0))):
        if not quiet:
            print(f"state:        down (no running reload server; looked for {path})")
        return 1
    data["procs"] = read_procs(path.parent)
    if as_json:
        print(json.dumps(data, indent=2))
    elif not quiet:
        print(format_status(data, time.time()))
    if question == "live":
        return 0
    answering = ANSWERING_STATES if question == "ready" else ("serving", "reloading")
    return 0 if data["state"] in answering else 1


def cmd_wait(args: list[str]) -> int:
    """For scripts and `devcontainer up` (postStartCommand): return once the port answers HTTP, whether
    with the app or with the error page, so that a `curl` right after never meets a closed port."""
    import http.client

    timeout = 300.0
    if args[:1] == ["--timeout"] and len(args) == 2:
        try:
            timeout = float(args[1])
        except ValueError:
            return fail(f"--timeout {args[1]!r} is not a number of seconds")
    elif args:
        return fail("usage: unstuck wait [--timeout SECONDS]")
    port = int(os.environ.get("PORT", "8000") or 8000)
    deadline = time.monotonic() + timeout
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/", headers={"Accept": "application/json"})
            status = conn.getresponse().status
            current = (find_state()[0] or {}).get("state")
            # "starting" answers too, but with a placeholder (importing, installing): not what a script
            # waiting for the app wants. Plain uvicorn publishes no state: its answer is enough.
            if current != "starting" or os.environ.get("UNSTUCK_RELOADER") == "uvicorn":
                print(f"unstuck: port {port} answers ({status}, {current or 'no state'})")
                return 0
            why = f"still {current}"
        except OSError as exc:
            why = str(exc)
        if time.monotonic() > deadline:
            current = (find_state()[0] or {}).get("state", "down")
            return fail(f"port {port} did not answer within {timeout:g} s ({why}; state: {current}); "
                        "see the container's log")
        time.sleep(0.1)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "worker":
        from unstuck.generation import worker

        return worker.main(rest)
    if command == "warm-process":
        from unstuck.warm import warm_process

        return warm_process.main(rest)
    if command == "proc":
        from unstuck.procs import proc_worker

        return proc_worker.main(rest)
    if command == "unfatal":
        from unstuck.supervision import unfatal

        return unfatal.main()
    handlers = {"run": cmd_run, "check": cmd_check, "serve": cmd_serve, "status": cmd_status, "wait": cmd_wait,
                "deps": cmd_deps}
    if command not in handlers:
        print(f"unstuck: error: unknown command {command!r}; run 'unstuck --help' for the list", file=sys.stderr)
        return 2
    return handlers[command](rest)
