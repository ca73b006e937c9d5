"""A dependency that needs a C header the image lacks: the port says which header, which Debian package has it
and the build argument that adds it; the image built with that argument installs the package and serves.

cffi stands for any sdist with a C extension (python-ldap, mysqlclient ...): it has wheels, so the project
asks for its source (`--no-binary cffi`, as a project that must build against the system's libffi does),
which needs ffi.h (Debian's libffi-dev, not in the image by default)."""

from __future__ import annotations

import re
import uuid

import docker
import httpx
import pytest

from containers import LABEL, SESSION, Served, free_port
from repo import RECOVERIES, REPO
from test_project_env_in_container import make_project
from waiting import wait_for

PROJECT = {
    "requirements.txt": "--no-binary cffi\ncffi==1.17.1\n",
    "main.py": """
        import json
        import cffi, _cffi_backend


        async def app(scope, receive, send):
            if scope["type"] != "http":
                return
            body = json.dumps({"cffi": cffi.__version__, "backend": _cffi_backend.__file__}).encode()
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": body})
        """,
}
HINT = ("hint: 'cffi' is declared in requirements.txt but the install failed: cffi 1.17.1 cannot be built: the C "
        "header ffi.h is missing (Debian package libffi-dev); rebuild the image with --build-arg "
        "UNSTUCK_BUILD_PACKAGES=")
INSTALL_S = 300  # downloads cffi's source and builds it (about 20 s on 2 cores), or fails to


@pytest.fixture
def build_image(docker_client, base_image):
    """build_image(buildargs) -> image: the `unstuck` target with these build arguments, removed afterwards."""
    built = []

    def build(buildargs: dict):
        try:
            image, _ = docker_client.images.build(
                path=str(REPO), target="unstuck", buildargs={"BASE_IMAGE": base_image, **buildargs},
                tag=f"unstuck-test-build-packages:{SESSION}", labels={LABEL: SESSION}, rm=True, forcerm=True)
        except docker.errors.BuildError as exc:
            tail = "".join(str(c.get("stream", c.get("error", ""))) for c in exc.build_log)[-3000:]
            pytest.fail(f"the image did not build with {buildargs}: {exc}\n{tail}", pytrace=False)
        built.append(image)
        return image

    yield build
    for image in built:
        try:
            docker_client.images.remove(image.id, force=True)
        except docker.errors.APIError:
            pass


def test_a_missing_header_is_named_on_the_port_and_the_build_argument_it_names_makes_the_app_serve(
        tmp_path, start_project, build_image, docker_client, uv_cache):
    project = make_project(tmp_path, PROJECT)

    # The default image: no ffi.h. The page says what is missing and the build argument that adds it.
    served = start_project(project)
    _, response = wait_for(served.url(), lambda r: r.status_code == 503 and "hint: " in r.text, timeout=INSTALL_S,
                           on_timeout=served.logs_tail)
    assert "ModuleNotFoundError: No module named 'cffi'" in response.text, response.text
    assert HINT in response.text, response.text
    packages = re.search(r'UNSTUCK_BUILD_PACKAGES="([^"]*)"', response.text).group(1)
    assert packages.split()[-1] == "libffi-dev", packages
    status = served.status()
    assert "the C header ffi.h is missing (Debian package libffi-dev)" in status["dependencies_error"], status
    served.container.remove(force=True)

    # The image built with that argument, exactly as the page wrote it: the package builds and the app serves.
    image = build_image({"UNSTUCK_BUILD_PACKAGES": packages})
    port = free_port()
    container = docker_client.containers.run(
        image.id, detach=True, labels={LABEL: SESSION}, ports={"8000/tcp": ("127.0.0.1", port)},
        volumes={str(project): {"bind": "/workspace", "mode": "rw"},
                 uv_cache: {"bind": "/home/app/.unstuck/cache", "mode": "rw"}},
        name=f"unstuck-test-{SESSION}-{uuid.uuid4().hex[:6]}")
    try:
        rebuilt = Served(container, port, project)
        wait_for(rebuilt.url(), lambda r: r.status_code == 200, timeout=INSTALL_S, on_timeout=rebuilt.logs_tail)
        served_by = httpx.get(rebuilt.url(), timeout=10).json()
        assert served_by["cffi"] == "1.17.1", served_by
        # Its C extension, compiled in the container into the project environment.
        assert served_by["backend"].startswith("/home/app/.unstuck/venv/lib/"), served_by
        assert served_by["backend"].endswith(".so"), served_by
        logs = rebuilt.logs()
        assert "Built cffi==1.17.1" in logs, rebuilt.logs_tail()
        took = re.search(r"dependencies installed from requirements.txt in ([\d.]+) s", logs)
        RECOVERIES.append(("cffi built from source (ffi.h added by UNSTUCK_BUILD_PACKAGES): install", float(took.group(1))))
    finally:
        container.remove(force=True)
