import configparser
import shlex
import shutil
import subprocess
import sys
import tempfile
import xmlrpc.client
from pathlib import Path

import pytest
from supervisor.options import ServerOptions

from unstuck import config
from unstuck.seams import supervisor_seam
from waiting import wait_until
from unstuck.supervision import supervisord_conf


def rendered(tmp_path, **env):
    settings = config.load({"APP_DIR": str(tmp_path), "UNSTUCK_RUN_DIR": str(tmp_path / "run"), **env})
    parser = configparser.RawConfigParser()
    parser.read_string(supervisord_conf.render(settings, "s3cret-for-test"))
    return parser


def test_foreground_logs_to_container_streams_and_private_socket(tmp_path):
    conf = rendered(tmp_path)
    assert conf["supervisord"]["nodaemon"] == "true"
    assert conf["supervisord"]["logfile"] == "/dev/null"
    assert conf["unix_http_server"]["file"] == f"{tmp_path}/run/supervisor.sock"
    assert conf["unix_http_server"]["chmod"] == "0700"
    assert not conf.has_section("inet_http_server")
    assert conf["supervisorctl"]["serverurl"] == f"unix://{tmp_path}/run/supervisor.sock"
    server = conf["program:server"]
    assert server["stdout_logfile"] == "/dev/stdout" and server["stdout_logfile_maxbytes"] == "0"
    assert server["redirect_stderr"] == "true" and server["stopasgroup"] == "true"
    assert server["autorestart"] == "true"
    assert int(server["stopwaitsecs"]) < 10  # well under docker's kill timeout
    assert conf["eventlistener:unfatal"]["events"] == "PROCESS_STATE_FATAL"


@pytest.fixture
def real_supervisord(tmp_path):
    """A real supervisord serving the control socket exactly as the rendered config declares it (its programs,
    listener and include left out: nothing is started), and supervisor's own reading of the whole config."""
    run_dir = Path(tempfile.mkdtemp(prefix="sv", dir="/tmp"))  # a short path: AF_UNIX allows ~100 bytes
    settings = config.load({"APP_DIR": str(tmp_path), "UNSTUCK_RUN_DIR": str(run_dir)}, check_dirs=False)
    conf = tmp_path / "supervisord.conf"
    conf.write_text(supervisord_conf.render(settings, "s3cret-for-test"))
    options = ServerOptions()
    options.realize(args=["-c", str(conf)])
    parser = configparser.RawConfigParser()
    parser.read(conf)
    for section in [s for s in parser.sections() if s.startswith(("program:", "eventlistener:", "include"))]:
        parser.remove_section(section)
    socket_only = tmp_path / "socket-only.conf"
    with socket_only.open("w") as out:
        parser.write(out)
    proc = subprocess.Popen([sys.executable, "-m", "supervisor.supervisord", "-c", str(socket_only), "-n"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"unix://{settings.supervisor_socket}"
    try:
        wait_until("supervisord serves its control socket", lambda: (
            settings.supervisor_socket.exists() or proc.poll() is not None, f"exit {proc.poll()}"), timeout=30)
        assert proc.poll() is None, proc.stderr.read().decode()
        yield options, conf, url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(run_dir, ignore_errors=True)


def environment_of(options, name: str, url: str) -> dict:
    """What supervisord gives that program: its environment= as supervisor parses it, and the socket's URL."""
    program = next(p for group in options.process_group_configs for p in group.process_configs if p.name == name)
    return {**(program.environment or {}), "SUPERVISOR_SERVER_URL": url}


def test_control_socket_needs_the_password_that_ctl_and_listener_are_given(real_supervisord, tmp_path):
    options, conf, url = real_supervisord

    def state(environ) -> str:
        return supervisor_seam.rpc_interface(environ).supervisor.getState()["statename"]

    for credentials in ({}, {"SUPERVISOR_USERNAME": "unstuck", "SUPERVISOR_PASSWORD": "guessed"}):
        with pytest.raises(xmlrpc.client.ProtocolError) as refused:  # no password, or a wrong one: refused
            state({"SUPERVISOR_SERVER_URL": url, **credentials})
        assert refused.value.errcode == 401
    # The reload server (Procfile workers) and the FATAL listener, with what the config gives each of them.
    assert state(environment_of(options, "server", url)) == "RUNNING"
    assert state(environment_of(options, "unfatal", url)) == "RUNNING"
    # supervisorctl, with the rendered config's [supervisorctl] section, and without its password.
    ctl = [sys.executable, "-m", "supervisor.supervisorctl"]
    done = subprocess.run([*ctl, "-c", str(conf), "pid"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0 and done.stdout.strip().isdigit(), done.stdout + done.stderr
    bare = subprocess.run([*ctl, "-s", url, "pid"], capture_output=True, text=True, timeout=30)
    assert bare.returncode != 0 and "authentication" in (bare.stdout + bare.stderr).lower(), bare.stdout


def test_default_runs_unstuck_reloader(tmp_path):
    command = shlex.split(rendered(tmp_path)["program:server"]["command"])
    assert command[1:] == ["-m", "unstuck", "serve"]


def test_uvicorn_fallback_is_plain_uvicorn_reload(tmp_path):
    command = shlex.split(rendered(tmp_path, UNSTUCK_RELOADER="uvicorn", PORT="9000")["program:server"]["command"])
    assert command[1:4] == ["-m", "uvicorn", "app.main:app"]
    assert "--reload" in command and command[command.index("--reload-dir") + 1] == str(tmp_path)
    assert command[command.index("--port") + 1] == "9000"


def test_uvicorn_fallback_serves_what_discovery_finds(tmp_path):
    (tmp_path / "src" / "shop").mkdir(parents=True)
    (tmp_path / "src" / "shop" / "__init__.py").write_text("def create_app():\n    ...\n")
    command = shlex.split(rendered(tmp_path, UNSTUCK_RELOADER="uvicorn")["program:server"]["command"])
    assert command[3:5] == ["shop:create_app", "--factory"]
    assert command[command.index("--app-dir") + 1] == str(tmp_path / "src")
