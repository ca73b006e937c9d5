"""The README's main command on a fresh copy of the repo: `docker compose up` serves and reloads,
`docker compose down` leaves nothing behind."""

import os
import shutil
import subprocess

import pytest

from editor import save_in_place
from containers import SESSION, free_port, readable_copy
from repo import REPO
from waiting import has_text, wait_for

PROJECT_FILES = ["Dockerfile", ".dockerignore", "compose.yaml", "entrypoint"]


def compose(project_dir, name, env, *args, timeout=300):
    cmd = ["docker", "compose", "--project-name", name, *args]
    return subprocess.run(cmd, cwd=project_dir, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def compose_project(tmp_path, base_image, docker_client):
    project_dir = tmp_path / "repo"
    project_dir.mkdir()
    for name in PROJECT_FILES:
        src = REPO / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, project_dir / name)
    readable_copy(REPO / "app", project_dir / "app")
    name = f"unstuck-test-{SESSION}"
    port = free_port()
    env = {**os.environ, "UNSTUCK_PORT": str(port), "UNSTUCK_DEBUG_PORT": str(free_port()), "BASE_IMAGE": base_image}
    yield project_dir, name, env, port
    compose(project_dir, name, env, "down", "--rmi", "local", "--volumes", "--remove-orphans", "--timeout", "5")


def test_compose_up_serves_reloads_and_down_cleans_up(compose_project, docker_client):
    project_dir, name, env, port = compose_project
    up = compose(project_dir, name, env, "up", "--detach", "--build", "--wait", "--wait-timeout", "120")
    assert up.returncode == 0, up.stdout + up.stderr
    url = f"http://127.0.0.1:{port}/"
    wait_for(url, has_text(200, "Hello from unstuck"))

    main = project_dir / "app" / "main.py"
    save_in_place(main, main.read_text().replace("Hello from unstuck", "edited under compose"))
    wait_for(url, has_text(200, "edited under compose"))
    logs = compose(project_dir, name, env, "logs", "--no-color", "app")
    assert "reloaded in" in logs.stdout and "main.py" in logs.stdout

    # Published on loopback only, the app port and the debugger's.
    ports = docker_client.containers.list(filters={"label": f"com.docker.compose.project={name}"})[0].ports
    assert {port: [b["HostIp"] for b in bindings] for port, bindings in ports.items()} == {
        "8000/tcp": ["127.0.0.1"], "5678/tcp": ["127.0.0.1"]}

    down = compose(project_dir, name, env, "down", "--timeout", "10")
    assert down.returncode == 0, down.stderr
    label = {"label": f"com.docker.compose.project={name}"}
    assert docker_client.containers.list(all=True, filters=label) == []
    assert docker_client.networks.list(filters=label) == []
    # The project environment's volume outlives `down` (the fixture's `down --volumes` removes it).
    assert [v.name for v in docker_client.volumes.list(filters=label)] == [f"{name}_project-env"]
