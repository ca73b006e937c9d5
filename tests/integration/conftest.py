"""Fixtures for real containers of the unstuck image, each with a temp copy of the sample app mounted."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import docker
import pytest

from containers import LABEL, SESSION, Served, default_base_image, free_port, readable_copy, remove_all
from repo import REPO


@pytest.fixture(scope="session")
def docker_client():
    try:
        client = docker.from_env()
        client.ping()
    except Exception as exc:  # noqa: BLE001 - any failure here means the same thing to the user
        pytest.fail(f"cannot reach the Docker engine ({exc}); start Docker and run the tests again", pytrace=False)
    yield client
    for container in client.containers.list(all=True, filters={"label": f"{LABEL}={SESSION}"}):
        container.remove(force=True)
    client.close()


@pytest.fixture(scope="session")
def base_image() -> str:
    return os.environ.get("BASE_IMAGE") or default_base_image()


def _build(docker_client, base_image: str, tag: str, target: str | None = None):
    try:
        built, _ = docker_client.images.build(path=str(REPO), buildargs={"BASE_IMAGE": base_image}, tag=tag,
                                              target=target, labels={LABEL: SESSION}, rm=True, forcerm=True)
    except docker.errors.BuildError as exc:
        tail = "".join(str(chunk.get("stream", chunk.get("error", ""))) for chunk in exc.build_log)[-3000:]
        pytest.fail(f"image build failed with BASE_IMAGE={base_image}: {exc}\n{tail}", pytrace=False)
    return built


@pytest.fixture(scope="session")
def image(docker_client, base_image):
    """This repo's image: the sample app baked in (what `docker compose up` here builds)."""
    built = _build(docker_client, base_image, f"unstuck-test:{SESSION}")
    yield built
    docker_client.images.remove(built.id, force=True)


@pytest.fixture(scope="session")
def product_image(docker_client, base_image):
    """The image for any project (`make image`: the Dockerfile's `unstuck` target), no app inside."""
    built = _build(docker_client, base_image, f"unstuck-test-product:{SESSION}", target="unstuck")
    yield built
    try:
        docker_client.images.remove(built.id, force=True)
    except docker.errors.APIError:
        pass


@pytest.fixture(scope="session")
def uv_cache(docker_client):
    """One uv cache for the session's project containers, so that each project downloads its packages once
    (a user's own volume keeps theirs the same way)."""
    volume = docker_client.volumes.create(f"unstuck-test-{SESSION}-uv-cache", labels={LABEL: SESSION})
    yield volume.name
    try:
        volume.remove(force=True)
    except docker.errors.APIError:
        pass


def _run(docker_client, image, env: dict | None, volumes: dict, extra_ports: tuple = ()):
    port = free_port()
    published = {p: free_port() for p in extra_ports}
    container = docker_client.containers.run(
        image.id, detach=True, labels={LABEL: SESSION}, environment=env or {},
        ports={"8000/tcp": ("127.0.0.1", port), **{f"{p}/tcp": ("127.0.0.1", h) for p, h in published.items()}},
        volumes=volumes, name=f"unstuck-test-{SESSION}-{uuid.uuid4().hex[:6]}",
    )
    return container, port, published


@pytest.fixture
def start_project(docker_client, product_image, uv_cache, tmp_path):
    """start_project(project_dir, env=..., writable=...) -> Served: a detached container with a readable copy of
    a whole project directory mounted at /workspace (APP_DIR), as users mount theirs (`writable`: its directories
    writable by the container's user too); `Served.app_dir` is the copy."""
    started = []

    def start(project_dir, env: dict | None = None, writable: bool = False) -> Served:
        mounted = tmp_path / f"workspace{len(started)}"
        readable_copy(project_dir, mounted)
        if writable:  # the app writes beside its code, as in a checkout its user owns
            for path in [mounted, *mounted.rglob("*")]:
                if path.is_dir():
                    path.chmod(0o777)
        container, port, _ = _run(docker_client, product_image, env, {
            str(mounted): {"bind": "/workspace", "mode": "rw"}, uv_cache: {"bind": "/home/app/.unstuck/cache", "mode": "rw"}})
        started.append(container)
        return Served(container, port, mounted)

    yield start
    remove_all(started)


@pytest.fixture
def start_container(docker_client, image, tmp_path):
    """start_container(env=..., files=...) -> Served: a detached container with a fresh copy of the sample
    app, `files` ({name: source}) written into it first."""
    started = []

    def start(env: dict | None = None, files: dict[str, str] | None = None, extra_ports: tuple = (),
              app_dir: Path | None = None) -> Served:
        if app_dir is None:  # else the caller's copy (e.g. seen through a FUSE view)
            app_dir = tmp_path / f"project{len(started)}" / "app"
            readable_copy(REPO / "app", app_dir)
        for name, source in (files or {}).items():
            (app_dir / name).write_text(source)
        container, port, published = _run(docker_client, image, env,
                                          {str(app_dir): {"bind": "/workspace/app", "mode": "rw"}}, extra_ports)
        started.append(container)
        return Served(container, port, app_dir, published)

    yield start
    remove_all(started)
