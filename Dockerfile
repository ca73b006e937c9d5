# unstuck: a Python dev server image whose hot reload never gets stuck.
# Any official python:3.11+-slim works as the base; where no registry is reachable, pass a local one:
#   docker compose build --build-arg BASE_IMAGE=my-python-base   (or BASE_IMAGE=... in the environment)
# Two targets: `unstuck` is the image for any project (`make image`; mount the project at /workspace),
# and the last one, `sample`, adds this repo's sample app (what `docker compose up` here serves).
ARG BASE_IMAGE=python:3.13-slim
FROM ${BASE_IMAGE} AS unstuck

ARG UNSTUCK_UID=1000
ARG UNSTUCK_GID=1000

# Two environments: unstuck's runtime in /opt/unstuck/venv (root-owned, read-only while the container
# runs), and the project environment with the app's own dependencies under /home/app/.unstuck (owned by
# the runtime user, and by the host UID when the devcontainer CLI renumbers that user, since it re-owns
# /home/app), with uv's cache beside it so that one volume keeps both and uv hardlinks from the cache.
# The project environment's bin comes first on PATH, and VIRTUAL_ENV/UV_PROJECT_ENVIRONMENT point at it,
# so `python`, `uv pip install` and `uv add` in a shell use the app's environment. UV_SYSTEM_CERTS: uv
# trusts the system's CA store as pip does (its own bundled roots otherwise), so a company CA added to the
# image (update-ca-certificates) serves both.
ENV UNSTUCK_PROJECT_ENV=/home/app/.unstuck/venv \
    UV_CACHE_DIR=/home/app/.unstuck/cache \
    UV_PROJECT_ENVIRONMENT=/home/app/.unstuck/venv \
    UV_PYTHON_DOWNLOADS=never \
    UV_SYSTEM_CERTS=1 \
    VIRTUAL_ENV=/home/app/.unstuck/venv \
    PATH=/home/app/.unstuck/venv/bin:/opt/unstuck/venv/bin:/opt/unstuck/entrypoint/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    APP_DIR=/workspace \
    APP_MODULE="" \
    HOST=0.0.0.0 \
    PORT=8000

# Packages without a wheel for this platform build, as in projects' own dev images (cookiecutter-django's
# installs build-essential and libpq-dev): a C compiler, the C library's headers and libpq's (psycopg[c],
# psycopg2), and Python's headers when the base lacks them (official python images have them; a base on
# Debian's python3 gets python3-dev). More Debian packages (an install error names the missing ones):
#   --build-arg UNSTUCK_BUILD_PACKAGES="gcc libc6-dev libpq-dev libldap2-dev libsasl2-dev"
# and "" for the leanest image (wheels only). Cost: see the README ("Dependency sources").
ARG UNSTUCK_BUILD_PACKAGES="gcc libc6-dev libpq-dev"
RUN set -eux; \
    packages="${UNSTUCK_BUILD_PACKAGES}"; \
    include="$(python3 -c 'import sysconfig; print(sysconfig.get_path("include"))')"; \
    if [ -n "${packages}" ] && [ ! -e "${include}/Python.h" ]; then packages="${packages} python3-dev"; fi; \
    if [ -n "${packages}" ]; then \
        apt-get update; \
        apt-get install -y --no-install-recommends ${packages}; \
        apt-get clean; \
        rm -rf /var/lib/apt/lists/*; \
    fi

# The runtime user, unstuck's virtualenv, the project environment's home and the private runtime
# directory (supervisord's control socket).
# tar is how code arrives without a bind mount (kubectl cp, Tilt and Skaffold run `tar x` in the container):
# a base image without it would build fine and then never receive a sync.
RUN set -eux; \
    command -v tar >/dev/null || { echo "BASE_IMAGE has no tar, which kubectl cp, Tilt and Skaffold syncs need: pick a base with tar" >&2; exit 1; }; \
    groupadd --gid "${UNSTUCK_GID}" app; \
    useradd --uid "${UNSTUCK_UID}" --gid app --create-home --shell /bin/bash app; \
    python3 -m venv /opt/unstuck/venv; \
    mkdir -p /workspace/app /run/unstuck /home/app/.unstuck/cache; \
    chown app:app /workspace /workspace/app /run/unstuck /home/app/.unstuck /home/app/.unstuck/cache; \
    chmod 0700 /run/unstuck

# unstuck's runtime, before any code so that a code-only change rebuilds in seconds. supervisorctl looks
# for <venv>/etc/supervisord.conf first: the link (made here, the venv being read-only at run time)
# points it at the config `unstuck run` writes.
COPY entrypoint/requirements.txt /opt/unstuck/requirements.txt
RUN /opt/unstuck/venv/bin/pip install --no-cache-dir -r /opt/unstuck/requirements.txt \
    && mkdir -p /opt/unstuck/venv/etc \
    && ln -s /run/unstuck/supervisord.conf /opt/unstuck/venv/etc/supervisord.conf

# unstuck's code on the runtime's path, and the project environment's packages after the runtime's own in
# every runtime process (project-env.pth: plain uvicorn --reload runs no unstuck code before the app;
# its name sorts after unstuck.pth, so a project package named `unstuck` cannot hide unstuck).
COPY entrypoint/ /opt/unstuck/entrypoint/
RUN site_packages="$(/opt/unstuck/venv/bin/python -c 'import site; print(site.getsitepackages()[0])')" \
    && echo /opt/unstuck/entrypoint > "${site_packages}/unstuck.pth" \
    && cp /opt/unstuck/entrypoint/project-env.pth "${site_packages}/unstuck_project_env.pth" \
    && unstuck --help >/dev/null

# The numeric uid, not the name (and not uid:gid): the engine resolves a named USER (or `1000:1000`) through
# getent when `docker compose watch` copies a file in, and fails for every sync; `1000` is user `app`.
USER ${UNSTUCK_UID}
WORKDIR /workspace
EXPOSE 8000
HEALTHCHECK --interval=5s --timeout=3s --start-period=30s --retries=3 CMD ["unstuck", "status", "--quiet"]
ENTRYPOINT ["docker-entrypoint"]


FROM unstuck AS sample
# The sample app's dependencies, into the project environment: `unstuck deps` also records what it
# installed, so a container serving this same app installs nothing at start.
COPY --chown=app:app app/requirements.txt /workspace/app/requirements.txt
RUN unstuck deps
COPY --chown=app:app app/ /workspace/app/
