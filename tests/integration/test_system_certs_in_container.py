"""Any network (issue 19, goal 5): uv trusts the system's CA store, as pip does, so a CA added to the image
(update-ca-certificates) serves both. A project's dependency installs from an HTTPS index inside the container
whose certificate is signed by a CA of the test's own, trusted only through the system store; without
UV_SYSTEM_CERTS the install fails and the user is told it is the certificate."""

from __future__ import annotations

import base64
import hashlib
import textwrap
import uuid
import zipfile
from pathlib import Path

import httpx
import pytest
import trustme

from containers import LABEL, SESSION, Served, free_port, readable_copy
from editor import save_in_place
from waiting import has_text, wait_for, wait_until

INDEX_PORT = 8443
PROBE = "unstuck_tls_probe"
# Serves /idx/simple over TLS on loopback: the container cannot reach the host's loopback.
SERVE = """
import functools, http.server, ssl
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain("/idx/server.pem")
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory="/idx/simple")
server = http.server.ThreadingHTTPServer(("127.0.0.1", %d), handler)
server.socket = ctx.wrap_socket(server.socket, server_side=True)
server.serve_forever()
""" % INDEX_PORT
APP = f"""
import {PROBE}

async def app(scope, receive, send):
    await send({{"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]}})
    await send({{"type": "http.response.body", "body": {PROBE}.ANSWER.encode()}})
"""
NO_DEPS_APP = """
async def app(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"no deps yet"})
"""


def pyproject(deps: list[str]) -> str:
    return f'[project]\nname = "svc"\nversion = "0.1.0"\nrequires-python = ">=3.8"\ndependencies = {deps!r}\n'.replace(
        "'", '"')


def write_index(root: Path) -> None:
    """A PEP 503 simple index with one pure-Python wheel, unstuck-tls-probe 1.0 (ANSWER = 'probe-42'), and a
    CA of our own with a certificate for 127.0.0.1 signed by it."""
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(root / "ca.crt"))
    ca.issue_cert("127.0.0.1", "localhost").private_key_and_cert_chain_pem.write_to_path(str(root / "server.pem"))
    (root / "serve.py").write_text(SERVE)
    dist = f"{PROBE}-1.0.dist-info"
    files = {f"{PROBE}/__init__.py": "ANSWER = 'probe-42'\n",
             f"{dist}/METADATA": "Metadata-Version: 2.1\nName: unstuck-tls-probe\nVersion: 1.0\n",
             f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}

    def digest(text: str) -> str:
        return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()

    record = "".join(f"{p},{digest(t)},{len(t.encode())}\n" for p, t in files.items()) + f"{dist}/RECORD,,\n"
    wheel = f"{PROBE}-1.0-py3-none-any.whl"
    project_dir = root / "simple" / "unstuck-tls-probe"
    project_dir.mkdir(parents=True)
    with zipfile.ZipFile(project_dir / wheel, "w") as archive:
        for path, text in {**files, f"{dist}/RECORD": record}.items():
            archive.writestr(path, text)
    (project_dir / "index.html").write_text(f'<a href="{wheel}">{wheel}</a>\n')


# "default": what the image and unstuck set; "0": uv's own bundled roots only (the red case).
@pytest.mark.parametrize("system_certs", ["default", "0"])
def test_a_dependency_installs_through_an_index_signed_by_a_ca_in_the_system_store(
        tmp_path, docker_client, product_image, system_certs):
    src = tmp_path / "src"
    (src / "idx").mkdir(parents=True)
    write_index(src / "idx")
    (src / "project").mkdir()
    (src / "project" / "pyproject.toml").write_text(pyproject([]))
    (src / "project" / "main.py").write_text(textwrap.dedent(NO_DEPS_APP).lstrip())
    mounted = tmp_path / "mounted"
    readable_copy(src, mounted)  # readable by the container's user

    port = free_port()
    # SSL_CERT_FILE (which the local base image sets, as a CI image might) replaces the system store in uv
    # whatever UV_SYSTEM_CERTS says, so it is unset here: the test CA is trusted only through the system store.
    container = docker_client.containers.run(
        product_image.id, detach=True, labels={LABEL: SESSION},
        entrypoint=["env", "-u", "SSL_CERT_FILE", "-u", "PIP_CERT", "docker-entrypoint"],
        environment={"APP_MODULE": "main:app", **({} if system_certs == "default" else {"UV_SYSTEM_CERTS": system_certs}),
                     "UV_INDEX_URL": f"https://127.0.0.1:{INDEX_PORT}/"},
        ports={"8000/tcp": ("127.0.0.1", port)},
        volumes={str(mounted / "project"): {"bind": "/workspace", "mode": "rw"},
                 str(mounted / "idx"): {"bind": "/idx", "mode": "ro"}},
        name=f"unstuck-test-{SESSION}-{uuid.uuid4().hex[:6]}")
    try:
        served = Served(container, port, mounted / "project")
        wait_for(served.url(), has_text(200, "no deps yet"), timeout=120, on_timeout=served.logs_tail)
        # The CA goes into the system store as an image's Dockerfile would put a company CA there.
        code, out = served.exec("sh", "-c", "cp /idx/ca.crt /usr/local/share/ca-certificates/unstuck-test-ca.crt"
                                " && update-ca-certificates", user="root")
        assert code == 0, out
        container.exec_run(["python", "/idx/serve.py"], user="root", detach=True)
        listening = f"import socket; socket.create_connection(('127.0.0.1', {INDEX_PORT}), timeout=1)"
        wait_until("the index listens", lambda: (served.exec("python", "-c", listening)[0] == 0, "not yet"))
        # What unstuck (and the uv it runs) inherits: PID 1's environment, not `docker exec`'s.
        _, env = served.exec("sh", "-c", "tr '\\0' '\\n' < /proc/1/environ")  # as PID 1's user
        assert "UV_INDEX_URL=" in env and "SSL_CERT_FILE" not in env and "REQUESTS_CA_BUNDLE" not in env, env

        save_in_place(mounted / "project" / "main.py", textwrap.dedent(APP).lstrip())
        save_in_place(mounted / "project" / "pyproject.toml", pyproject(["unstuck-tls-probe==1.0"]))
        if system_certs == "default":
            wait_for(served.url(), has_text(200, "probe-42"), timeout=180, on_timeout=served.logs_tail)
        else:  # uv's own roots: the install fails, and the 503 page and status say it is the certificate
            wait_for(served.url(), has_text(503, "invalid peer certificate"), timeout=180,
                     on_timeout=served.logs_tail)
            status = served.wait_status("the install error is reported",
                                        lambda s: "certificate" in (s.get("dependencies_error") or ""), timeout=60)
            assert "UnknownIssuer" in status["dependencies_error"], status["dependencies_error"]
            assert httpx.get(served.url(), timeout=10).status_code == 503
    finally:
        container.remove(force=True)
