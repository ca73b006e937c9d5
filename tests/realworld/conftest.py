"""Fixtures of `make test-realworld`: the image for each project's base, and a project served from it.

Not collected by `make test` / `pytest tests` (pytest.ini ignores this directory): it clones large public
projects and installs their dependencies, which takes minutes.
"""

from __future__ import annotations

import os
import time
import uuid

import docker
import httpx
import pytest

from containers import LABEL, SESSION, Served, free_port, remove_all
from integration.conftest import docker_client  # noqa: F401 - the same engine check and sweep
from realworld_projects import HEADERS, SourceMissing, export
from repo import REPO


@pytest.fixture(scope="session")
def images(docker_client):
    """images(project) -> the unstuck image (`make image`) on the project's base, with its build packages."""
    built = {}

    def image_for(project):
        base = os.environ.get("REALWORLD_BASE_IMAGE_" + project.name.upper()) or project.base
        key = (base, project.build_packages)
        if key not in built:
            args = {"BASE_IMAGE": base}
            if project.build_packages is not None:
                args["UNSTUCK_BUILD_PACKAGES"] = project.build_packages
            try:
                built[key], _ = docker_client.images.build(
                    path=str(REPO), buildargs=args, tag=f"unstuck-realworld:{SESSION}-{len(built)}", target="unstuck",
                    labels={LABEL: SESSION}, rm=True, forcerm=True)
            except docker.errors.BuildError as exc:
                pytest.fail(f"image build failed with {args}: {exc}", pytrace=False)
        return built[key]

    yield image_for
    for image in built.values():
        try:
            docker_client.images.remove(image.id, force=True)
        except docker.errors.APIError:
            pass


@pytest.fixture(scope="session")
def uv_cache(docker_client):
    volume = docker_client.volumes.create(f"unstuck-realworld-{SESSION}-uv-cache", labels={LABEL: SESSION})
    yield volume.name
    try:
        volume.remove(force=True)
    except docker.errors.APIError:
        pass


def first_answer(served: Served, project, timeout: float) -> None:
    """Wait until the app itself answers its first URL (no 503 of unstuck's: installing, starting or broken)."""
    started = time.monotonic()
    last = "no answer"
    with httpx.Client(timeout=30) as client:
        while time.monotonic() - started < timeout:
            try:
                response = client.get(served.url(project.urls[0]), headers=HEADERS)
                if response.status_code != 503:
                    return
                last = response.text[:300]
            except httpx.HTTPError as exc:
                last = repr(exc)
            time.sleep(0.5)
    pytest.fail(f"{project.name}: not served within {timeout:g} s; last: {last}\n{served.logs_tail(60)}",
                pytrace=False)


@pytest.fixture
def serve_project(docker_client, images, uv_cache, tmp_path):
    """serve_project(project) -> Served: the project exported at its commit, mounted at /workspace of a container of
    its image, with the environment its developer would set, answering, and set up (data loaded)."""
    started = []

    def serve(project) -> Served:
        try:
            tree = export(project, tmp_path / project.name)
        except SourceMissing as exc:
            pytest.fail(str(exc), pytrace=False)
        port = free_port()
        container = docker_client.containers.run(
            images(project).id, detach=True, labels={LABEL: SESSION}, environment=project.env,
            ports={"8000/tcp": ("127.0.0.1", port)}, name=f"unstuck-realworld-{SESSION}-{uuid.uuid4().hex[:6]}",
            volumes={str(tree): {"bind": "/workspace", "mode": "rw"},
                     uv_cache: {"bind": "/home/app/.unstuck/cache", "mode": "rw"}})
        started.append(container)
        served = Served(container, port, tree)
        first_answer(served, project, project.first_start_s)
        if project.release:
            served.wait_status("the Procfile's release ran", lambda s: (s.get("release") or {}).get("state") == "ok",
                               timeout=project.first_start_s)
        for command in project.setup:
            code, said = served.exec(*command)
            assert code == 0, f"{project.name}: {' '.join(command)} failed ({code}):\n{said[-3000:]}"
        return served

    yield serve
    remove_all(started)
