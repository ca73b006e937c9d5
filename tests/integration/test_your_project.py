"""The image as a product: a project outside this repo is served by the README's `docker run` one-liner,
by its compose snippet and by its devcontainer snippet (examples/), as written, with the image `make image`
builds (the Dockerfile's `unstuck` target)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import docker
import httpx
import pytest

from containers import LABEL, SESSION, free_port
from editor import save_in_place
from repo import REPO
from waiting import has_text, wait_for, wait_until

PROJECT = {
    "main.py": "from fastapi import FastAPI\n\napp = FastAPI()\n\n\n@app.get('/')\ndef root():\n"
               "    return {'project': 'mine v1'}\n",
    "requirements.txt": "fastapi==0.165.0\n",
}
FIRST_START_S = 240  # installs FastAPI from PyPI into a fresh project environment


def make_project(root: Path) -> Path:
    """A project as a user has one: anywhere but in this repo, readable by the container's user."""
    root.mkdir(parents=True)
    for name, text in PROJECT.items():
        (root / name).write_text(text)
    for path in [root, *root.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    for parent in root.parents:
        if parent == Path("/tmp") or parent == parent.parent:
            break
        parent.chmod(parent.stat().st_mode | 0o005)
    return root


def run(cmd, cwd: Path, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True,
                          timeout=timeout)


def edit_is_served(url: str, project: Path, logs) -> None:
    main = project / "main.py"
    save_in_place(main, main.read_text().replace("mine v1", "mine v2"))
    wait_for(url, has_text(200, "mine v2"), on_timeout=logs)


def test_the_readme_one_liner_serves_the_project_in_the_current_directory(tmp_path, product_image, docker_client):
    project = make_project(tmp_path / "my-project")
    port, name = free_port(), f"unstuck-test-{SESSION}-oneliner"
    tag = f"unstuck-test-product:{SESSION}"
    # The README's line, with -d and a label for the test to control it, and a free host port.
    line = (f'docker run --rm -d --name {name} --label {LABEL}={SESSION} -p 127.0.0.1:{port}:8000 '
            f'-v "$PWD:/workspace" {tag}')
    started = run(["sh", "-c", line], cwd=project)
    assert started.returncode == 0, started.stderr
    container = docker_client.containers.get(name)
    logs = lambda: container.logs().decode(errors="replace")[-3000:]  # noqa: E731
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_for(url, has_text(200, "mine v1"), timeout=FIRST_START_S, on_timeout=logs)
        # The status names the app once the generation's ready word is handled, which may follow its first answer.
        app = lambda: json.loads(container.exec_run(["unstuck", "status", "--json"]).output).get("app") or {}  # noqa: E731
        wait_until("the status names the app", lambda: (app().get("import") == "main:app", str(app())))
        assert app()["interface"] == "asgi3", app()
        edit_is_served(url, project, logs)
    finally:
        container.remove(force=True)


def test_the_compose_snippet_serves_the_project_and_keeps_its_dependencies(tmp_path, product_image, docker_client):
    project = make_project(tmp_path / "composed")
    shutil.copy(REPO / "examples" / "compose.yaml", project / "compose.yaml")
    (project / "compose.yaml").chmod(0o644)
    name, port = f"unstuck-test-{SESSION}-snippet", free_port()
    env = {"UNSTUCK_IMAGE": f"unstuck-test-product:{SESSION}", "UNSTUCK_PORT": str(port)}
    compose = ["docker", "compose", "--project-name", name]
    logs = lambda: run([*compose, "logs", "--no-color"], project, env).stdout[-3000:]  # noqa: E731
    url = f"http://127.0.0.1:{port}/"
    try:
        up = run([*compose, "up", "-d"], project, env)
        assert up.returncode == 0, up.stderr
        wait_for(url, has_text(200, "mine v1"), timeout=FIRST_START_S, on_timeout=logs)
        edit_is_served(url, project, logs)
        installs = json.loads(run([*compose, "exec", "-T", "web", "unstuck", "status", "--json"], project, env).stdout)
        assert installs["counters"]["installs"] == 1, installs["counters"]  # the first start installed FastAPI
        # Down and up again: a new container on the same volume installs nothing.
        assert run([*compose, "down"], project, env).returncode == 0
        assert run([*compose, "up", "-d"], project, env).returncode == 0
        wait_for(url, has_text(200, "mine v2"), timeout=120, on_timeout=logs)
        again = json.loads(run([*compose, "exec", "-T", "web", "unstuck", "status", "--json"], project, env).stdout)
        assert again["counters"]["installs"] == 0, again["counters"]
    finally:
        run([*compose, "down", "--volumes", "--timeout", "5"], project, env)


def test_the_devcontainer_snippet_returns_once_the_project_is_served(tmp_path, product_image, docker_client):
    cli = shutil.which("devcontainer")
    if cli is None:
        pytest.fail("the devcontainer CLI is not installed: run `npm install -g @devcontainers/cli`", pytrace=False)
    project = make_project(tmp_path / f"devc-{SESSION}")
    config = (REPO / "examples" / "devcontainer.json").read_text().replace(
        '"unstuck:latest"', f'"unstuck-test-product:{SESSION}"')
    (project / ".devcontainer").mkdir(mode=0o755)
    (project / ".devcontainer" / "devcontainer.json").write_text(config)
    port = free_port()
    env = {"UNSTUCK_PORT": str(port), "TMPDIR": str(tmp_path)}
    if run(["docker", "buildx", "version"], tmp_path).returncode != 0:
        env["DOCKER_BUILDKIT"] = "0"  # the CLI's UID-update image, with the classic builder
    data = tmp_path / "cli-data"
    try:
        up = run([cli, "up", "--workspace-folder", str(project), "--user-data-folder", str(data)], project, env,
                 timeout=FIRST_START_S + 300)
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
        # `up` returned only once the server answers: the very first request, with no retry, is served.
        first = httpx.get(f"http://127.0.0.1:{port}/", timeout=10)
        assert first.status_code == 200 and "mine v1" in first.text, first.text
        edit_is_served(f"http://127.0.0.1:{port}/", project, lambda: up.stderr[-2000:])
    finally:
        remove_devcontainer(docker_client, project)


def remove_devcontainer(client, project: Path) -> None:
    """Everything the CLI made for this folder: its container, the UID-update image it built on top of the
    image under test, and the project environment's volume (named after the container's id)."""
    containers = client.containers.list(all=True, filters={"label": f"devcontainer.local_folder={project}"})
    volumes = {m["Name"] for c in containers for m in c.attrs.get("Mounts", []) if m.get("Type") == "volume"}
    images = {c.image.id for c in containers}
    for container in containers:
        container.remove(force=True)
    for volume in volumes:
        if volume.startswith("unstuck-env-"):
            try:
                client.volumes.get(volume).remove(force=True)
            except docker.errors.APIError:
                pass
    for image in images:
        try:
            tags = client.images.get(image).tags
            if all(t.startswith(f"vsc-{project.name}") for t in tags):
                client.images.remove(image, force=True)
        except docker.errors.APIError:
            pass
