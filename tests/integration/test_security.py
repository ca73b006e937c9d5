"""Safe by default: non-root, a private control socket, nothing listening but the app (and the debugger
when enabled), and no credentials in the layers the Dockerfile adds."""

import json
import re

import docker
import pytest

from containers import LABEL, SESSION

from waiting import has_text, wait_for, wait_until

LISTENERS = (
    "import socket\n"
    "out = []\n"
    "for name in ('/proc/net/tcp', '/proc/net/tcp6'):\n"
    "    for line in open(name).read().splitlines()[1:]:\n"
    "        f = line.split()\n"
    "        if f[3] != '0A':\n"  # TCP_LISTEN
    "            continue\n"
    "        addr, port = f[1].split(':')\n"
    "        out.append([addr, int(port, 16)])\n"
    "print(__import__('json').dumps(out))\n"
)
LOOPBACK = {"0100007F", "00000000000000000000000001000000"}


def listening_ports(served) -> set[int]:
    """Ports listening on an interface other than loopback, inside the container."""
    _, out = served.exec("python", "-c", LISTENERS)
    return {port for addr, port in json.loads(out) if addr not in LOOPBACK}


def test_everything_runs_as_the_non_root_user(start_container):
    served = start_container()
    wait_for(served.url(), has_text(200, "Hello"), on_timeout=served.logs_tail)
    code, out = served.exec("id", "-u")
    assert out.strip() == "1000"
    script = ("import os\nfor p in [d for d in os.listdir('/proc') if d.isdigit()]:\n"
              "    uid = [l for l in open(f'/proc/{p}/status') if l.startswith('Uid:')][0].split()[1]\n"
              "    print(uid)\n")
    _, out = served.exec("python", "-c", script)
    assert set(out.split()) == {"1000"}, out


def test_control_socket_is_private(start_container):
    served = start_container()
    wait_for(served.url(), has_text(200, "Hello"), on_timeout=served.logs_tail)
    _, out = served.exec("stat", "-c", "%a %U %n", "/run/unstuck", "/run/unstuck/supervisor.sock")
    lines = out.splitlines()
    assert lines[0] == "700 app /run/unstuck", out
    assert lines[1].startswith("700 app "), out
    _, out = served.exec("stat", "-c", "%a", "/run/unstuck/supervisord.conf")
    assert out.strip() == "600", out
    _, conf = served.exec("cat", "/run/unstuck/supervisord.conf")
    assert "[inet_http_server]" not in conf and "password=" in conf
    assert "CRIT" not in served.logs()  # no unauthenticated control server


def test_only_the_app_port_listens(start_container):
    served = start_container()
    wait_for(served.url(), has_text(200, "Hello"), on_timeout=served.logs_tail)
    assert listening_ports(served) == {8000}


def test_debug_port_listens_only_when_enabled(start_container):
    served = start_container(env={"UNSTUCK_DEBUG": "1"})
    wait_for(served.url(), has_text(200, "Hello"), on_timeout=served.logs_tail)
    wait_until("the debugger listens", lambda: (listening_ports(served) == {8000, 5678},
                                                 str(listening_ports(served))))


def test_no_credentials_in_the_layers_the_dockerfile_adds(docker_client, image, base_image):
    base = docker_client.images.get(base_image)
    base_env = set(base.attrs["Config"].get("Env") or [])
    added_env = [e for e in image.attrs["Config"].get("Env") or [] if e not in base_env]
    secret = re.compile(r"(PASSWORD|PASSWD|TOKEN|SECRET|API_KEY|CREDENTIAL|_AUTH|://[^/@\s]+:[^/@\s]+@)", re.I)
    assert [e for e in added_env if secret.search(e)] == []
    base_layers = {h["Id"] for h in base.history() if h["Id"] != "<missing>"}
    added = [h for h in image.history() if h["Id"] not in base_layers]
    assert added, "the image adds layers"
    assert [h["CreatedBy"] for h in added if secret.search(h["CreatedBy"])] == []
    # Nothing pip or a credential helper could leave behind.
    container = docker_client.containers.create(image.id, entrypoint=["sh", "-c", "true"], labels={LABEL: SESSION})
    try:
        for path in ["/root/.cache/pip", "/home/app/.cache/pip", "/root/.netrc", "/home/app/.netrc",
                     "/etc/pip.conf", "/root/.config/pip/pip.conf", "/root/.docker/config.json"]:
            with pytest.raises(docker.errors.NotFound):
                container.get_archive(path)
    finally:
        container.remove(force=True)
