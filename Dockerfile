# unstuck: a Python dev server image whose hot reload never gets stuck.
# Any official python:3.11+-slim works as the base; where no registry is reachable, pass a local one:
#   docker compose build --build-arg BASE_IMAGE=my-python-base   (or BASE_IMAGE=... in the environment)
ARG BASE_IMAGE=python:3.13-slim
FROM ${BASE_IMAGE}

ARG UNSTUCK_UID=1000
ARG UNSTUCK_GID=1000

ENV VIRTUAL_ENV=/opt/unstuck/venv \
    PATH=/opt/unstuck/venv/bin:/opt/unstuck/entrypoint/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    APP_DIR=/workspace \
    APP_MODULE="" \
    HOST=0.0.0.0 \
    PORT=8000

# The runtime user, the virtualenv and the private runtime directory (supervisord's control socket).
# tar is how code arrives without a bind mount (kubectl cp, Tilt and Skaffold run `tar x` in the container):
# a base image without it would build fine and then never receive a sync.
RUN set -eux; \
    command -v tar >/dev/null || { echo "BASE_IMAGE has no tar, which kubectl cp, Tilt and Skaffold syncs need: pick a base with tar" >&2; exit 1; }; \
    groupadd --gid "${UNSTUCK_GID}" app; \
    useradd --uid "${UNSTUCK_UID}" --gid app --create-home --shell /bin/bash app; \
    python3 -m venv "${VIRTUAL_ENV}"; \
    mkdir -p /workspace/app /run/unstuck; \
    chown app:app /workspace /workspace/app /run/unstuck; \
    chmod 0700 /run/unstuck

# Dependencies before any code, so a code-only change rebuilds in seconds.
COPY entrypoint/requirements.txt /opt/unstuck/requirements.txt
COPY app/requirements.txt /opt/unstuck/app-requirements.txt
# The venv belongs to the runtime user so that edits to app/requirements.txt install in place (and is
# writable whatever uid the devcontainer CLI renumbers that user to); the stamp records which
# requirements the image already has.
RUN pip install --no-cache-dir -r /opt/unstuck/requirements.txt -r /opt/unstuck/app-requirements.txt \
    && python -c "import hashlib, pathlib, sys; d = pathlib.Path(sys.prefix, '.unstuck-installed'); d.mkdir(); \
(d / hashlib.sha256(pathlib.Path('/opt/unstuck/app-requirements.txt').read_bytes()).hexdigest()).touch()" \
    && chown -R app:app "${VIRTUAL_ENV}" \
    && chmod -R a+rwX "${VIRTUAL_ENV}" /workspace

COPY entrypoint/ /opt/unstuck/entrypoint/
RUN python -c "import site, pathlib; pathlib.Path(site.getsitepackages()[0], 'unstuck.pth').write_text('/opt/unstuck/entrypoint\n')" \
    && unstuck --help >/dev/null
COPY --chown=app:app app/ /workspace/app/

# The numeric uid, not the name (and not uid:gid): the engine resolves a named USER (or `1000:1000`) through
# getent when `docker compose watch` copies a file in, and fails for every sync; `1000` is user `app`.
USER ${UNSTUCK_UID}
WORKDIR /workspace
EXPOSE 8000
HEALTHCHECK --interval=5s --timeout=3s --start-period=30s --retries=3 CMD ["unstuck", "status", "--quiet"]
ENTRYPOINT ["docker-entrypoint"]
