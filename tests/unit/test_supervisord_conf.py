import configparser
import shlex

from unstuck import config
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


def test_control_socket_needs_the_password_that_ctl_and_listener_are_given(tmp_path):
    conf = rendered(tmp_path)
    assert (conf["unix_http_server"]["username"], conf["unix_http_server"]["password"]) == ("unstuck", "s3cret-for-test")
    assert (conf["supervisorctl"]["username"], conf["supervisorctl"]["password"]) == ("unstuck", "s3cret-for-test")
    assert 'SUPERVISOR_PASSWORD="s3cret-for-test"' in conf["eventlistener:unfatal"]["environment"]


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
