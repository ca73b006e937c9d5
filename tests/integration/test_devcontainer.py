"""The dev container (.devcontainer/devcontainer.json) with the reference CLI on a fresh copy of the repo:
`devcontainer up` starts the compose service with the server under supervisord as under `docker compose
up`, the server answers inside and on the host, host saves are served at once, the app's own tests run
inside, and nothing the CLI created is left behind."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import docker
import httpx
import pytest

from containers import SESSION, free_port, readable_copy
from editor import save_in_place
from repo import REPO
from waiting import has_text, wait_for

PROJECT_FILES = ["Dockerfile", ".dockerignore", "compose.yaml", "entrypoint", ".devcontainer"]
UP_TIMEOUT = 600
EXEC_TIMEOUT = 120
DOWN_TIMEOUT = 120

# Inside the container: GET the server on the container's own loopback, retrying while it starts.
FETCH = """
import sys, time, urllib.request
deadline = time.monotonic() + 60
while True:
    try:
        with urllib.request.urlopen("http://127.0.0.1:8000/", timeout=5) as response:
            print(response.status, response.read().decode())
            break
    except OSError as exc:
        if time.monotonic() > deadline:
            sys.exit(f"no answer on 127.0.0.1:8000 within 60 s: {exc}")
        time.sleep(0.2)
"""


def tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.splitlines()[-lines:])


def run(cmd: list[str], cwd: Path, env: dict, timeout: float) -> subprocess.CompletedProcess:
    """Run a command in its own process group; on timeout kill the whole group (the CLI's docker
    children included) and fail saying which command hung."""
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"`{' '.join(cmd[:3])} ...` did not finish within {timeout:g} s\n{tail(out)}\n{tail(err)}",
                    pytrace=False)
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def succeeded(proc: subprocess.CompletedProcess, what: str, more: Callable[[], str] | None = None) -> str:
    """proc's stdout; when it exited non-zero, fail saying what did not work, with the end of its output
    and `more()` (the container's logs)."""
    if proc.returncode != 0:
        extra = more() if more else ""
        pytest.fail(f"{what} failed (exit {proc.returncode}):\n{tail(proc.stdout)}\n{tail(proc.stderr, 60)}\n{extra}",
                    pytrace=False)
    return proc.stdout


def devcontainer_cli() -> str:
    path = shutil.which("devcontainer")
    if path is None:
        pytest.fail("the devcontainer CLI is not installed: run `npm install -g @devcontainers/cli`", pytrace=False)
    return path


class DevContainer:
    """A copy of the repo opened with the devcontainer CLI, and everything needed to remove what it made."""

    def __init__(self, workspace: Path, data: Path, project: str, env: dict, port: int, client):
        self.workspace, self.data, self.project, self.env, self.port = workspace, data, project, env, port
        self.client = client
        self.image_tags: set[str] = set()
        self.image_ids: set[str] = set()

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def devcontainer(self, *args: str, timeout: float = EXEC_TIMEOUT) -> subprocess.CompletedProcess:
        cmd = [devcontainer_cli(), *args[:1], "--workspace-folder", str(self.workspace),
               "--user-data-folder", str(self.data), *args[1:]]
        return run(cmd, self.workspace, self.env, timeout)

    def exec(self, *cmd: str) -> subprocess.CompletedProcess:
        return self.devcontainer("exec", *cmd)

    def compose(self, *args: str) -> subprocess.CompletedProcess:
        return run(["docker", "compose", "--project-name", self.project, *args], self.workspace, self.env, DOWN_TIMEOUT)

    def logs(self) -> str:
        return "compose logs (tail):\n" + tail(self.compose("logs", "--no-color", "app").stdout)

    # Images: compose builds <project>-app; the CLI builds vsc-<workspace name>-<hash>-uid on top of it
    # (updateRemoteUserUID) with the classic builder, whose untagged intermediate images are its parents.
    def ours(self, tag: str) -> bool:
        return tag.startswith((f"{self.project}-app:", f"{self.project}_app:", f"vsc-{self.workspace.name}-"))

    def find_images(self) -> tuple[set[str], set[str]]:
        """(our tags, our image ids with their untagged parents), never reaching a base image."""
        tags, ids = set(), set()
        for ref in (f"{self.project}-app", f"{self.project}_app", f"vsc-{self.workspace.name}-*"):
            for image in self.client.images.list(filters={"reference": ref}):
                tags |= {t for t in image.tags if self.ours(t)}
                ids.add(image.id)
                parent = image.attrs.get("Parent")
                while parent:
                    try:
                        parent_image = self.client.images.get(parent)
                    except docker.errors.NotFound:
                        break
                    if parent_image.tags and not all(self.ours(t) for t in parent_image.tags):
                        break
                    ids.add(parent_image.id)
                    parent = parent_image.attrs.get("Parent")
        return tags, ids

    def remember_images(self) -> None:
        tags, ids = self.find_images()
        self.image_tags |= tags
        self.image_ids |= ids

    def remove(self) -> list[str]:
        """Remove the containers, network, volumes and images; return what is still there (nothing)."""
        self.remember_images()
        self.compose("down", "--rmi", "local", "--volumes", "--remove-orphans", "--timeout", "5")
        # `down --rmi local` only untags <project>-app while the -uid image depends on it, and leaves the
        # -uid image's intermediates. Untag by our names (never by id: an identical image may carry other
        # names), then delete what is left untagged, children before parents; never forced.
        for tag in sorted(self.image_tags, key=lambda t: not t.startswith("vsc-")):
            self.remove_image(tag)
        for image_id in sorted(self.image_ids, key=self.depth, reverse=True):
            try:
                if not self.client.images.get(image_id).tags:
                    self.remove_image(image_id)
            except docker.errors.NotFound:
                pass
        label = {"label": f"com.docker.compose.project={self.project}"}
        left = [f"container {c.name}" for c in self.client.containers.list(all=True, filters=label)]
        left += [f"network {n.name}" for n in self.client.networks.list(filters=label)]
        left += [f"volume {v.name}" for v in self.client.volumes.list(filters=label)]
        tags, ids = self.find_images()
        for image_id in sorted(self.image_ids | ids):
            try:
                left.append(f"image {image_id} {self.client.images.get(image_id).tags}")
            except docker.errors.NotFound:
                pass
        return left + [f"image {tag}" for tag in sorted(tags)]

    def remove_image(self, name: str) -> None:
        try:
            self.client.images.remove(name)
        except docker.errors.ImageNotFound:
            pass
        except docker.errors.APIError as exc:
            if exc.status_code not in (404, 409):  # 409: still used; reported as left behind
                raise

    def depth(self, image_id: str) -> int:
        depth = 0
        try:
            parent = self.client.images.get(image_id).attrs.get("Parent")
            while parent and depth < 100:
                depth += 1
                parent = self.client.images.get(parent).attrs.get("Parent")
        except docker.errors.NotFound:
            pass
        return depth


def buildx_available(env: dict) -> bool:
    probe = subprocess.run(["docker", "buildx", "version"], check=False, env=env, capture_output=True, timeout=30)
    return probe.returncode == 0


@pytest.fixture
def devcontainer(tmp_path, base_image, docker_client):
    # The CLI names its UID-update image after the workspace folder's name: make it unique to this run.
    workspace = tmp_path / f"unstuck-devc-{SESSION}"
    workspace.mkdir()
    for name in PROJECT_FILES:
        src = REPO / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, workspace / name)
    readable_copy(REPO / "app", workspace / "app")
    cli_tmp = tmp_path / "cli-tmp"  # the CLI's generated Dockerfiles and compose overrides stay in here
    cli_tmp.mkdir()
    port = free_port()
    # Every host port compose.yaml publishes gets a free one, so that a dev server already running on this
    # machine (or another test) cannot make `up` fail.
    env = {**os.environ, "UNSTUCK_PORT": str(port), "UNSTUCK_DEBUG_PORT": str(free_port()), "BASE_IMAGE": base_image,
           "TMPDIR": str(cli_tmp), "COMPOSE_PROJECT_NAME": f"unstuck-test-{SESSION}-devc"}
    if not buildx_available(env):
        # The CLI builds its UID-update image with `docker build`; without buildx that works only with the
        # classic builder, which DOCKER_BUILDKIT=1 would forbid. Compose builds either way.
        env.pop("DOCKER_BUILDKIT", None)
    dc = DevContainer(workspace, tmp_path / "cli-data", env["COMPOSE_PROJECT_NAME"], env, port, docker_client)
    try:
        yield dc
    finally:
        dc.remove()


def test_devcontainer_up_serves_reloads_runs_app_tests_and_cleans_up(devcontainer):
    dc = devcontainer
    up = dc.devcontainer("up", timeout=UP_TIMEOUT)
    dc.remember_images()
    result = json.loads(succeeded(up, "devcontainer up", dc.logs).strip().splitlines()[-1])
    assert result["outcome"] == "success", result
    assert result["composeProjectName"] == dc.project
    assert (result["remoteUser"], result["remoteWorkspaceFolder"]) == ("app", "/workspace")

    # `up` returned only once the server answers: the very first request, with no retry, gets the app.
    try:
        first = httpx.get(dc.url(), timeout=10)
    except httpx.HTTPError as exc:
        pytest.fail(f"right after `devcontainer up` the port does not answer: {exc!r}\n{dc.logs()}", pytrace=False)
    assert first.status_code == 200 and "Hello from unstuck" in first.text, first.text
    assert "unstuck: port 8000 answers (200, serving)" in up.stdout + up.stderr

    # The server answers inside the container too.
    inside = succeeded(dc.exec("python", "-c", FETCH), "GET http://127.0.0.1:8000/ inside the container", dc.logs)
    assert inside.startswith("200 ") and "Hello from unstuck" in inside, inside

    # The image's entrypoint ran: supervisord is PID 1 and the reload server is serving; commands run as
    # the image's user, renumbered to the host's UID on Linux unless the host user is root.
    probe = succeeded(dc.exec("sh", "-c", 'tr "\\0" " " </proc/1/cmdline; echo; id -un; id -u; unstuck status'),
                      "the process and user probe inside the container")
    pid1, user, uid, *status = probe.splitlines()
    assert "supervisord" in pid1, probe
    assert user == "app", probe
    if os.getuid() != 0:
        assert uid == str(os.getuid()), probe
    assert any(line.split() == ["state:", "serving"] for line in status), probe

    # The app's own tests, from inside the container (pytest exits 5 when it collects nothing).
    tests = dc.exec("python", "-m", "pytest", "-v", "-p", "no:cacheprovider", "app/tests")
    report = tests.stdout + tests.stderr
    assert tests.returncode == 0 and " passed" in report, report

    # A save on the host is served at once, inside and outside.
    main = dc.workspace / "app" / "main.py"
    save_in_place(main, main.read_text().replace("Hello from unstuck", "edited in the dev container"))
    wait_for(dc.url(), has_text(200, "edited in the dev container"), on_timeout=dc.logs)
    inside = succeeded(dc.exec("python", "-c", FETCH), "GET http://127.0.0.1:8000/ inside the container", dc.logs)
    assert "edited in the dev container" in inside, inside

    left = dc.remove()
    assert left == [], f"left behind: {left}"
