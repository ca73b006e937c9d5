"""The project environment: a virtualenv holding the app's own dependencies, apart from unstuck's runtime.

unstuck's runtime (/opt/unstuck/venv: uvicorn, watchfiles, supervisor, uv ...) is root-owned and read-only
while the container runs. What the app declares is installed by uv into this environment instead, at
UNSTUCK_PROJECT_ENV (default /home/app/.unstuck/venv): one named volume at /home/app/.unstuck keeps it,
and uv's cache beside it on the same filesystem (so uv hardlinks files instead of copying them), across
`docker compose down`/`up` and container re-creation.

It is made by uv from the runtime's own base interpreter, so compiled packages fit the interpreter that
runs the app. Each app generation runs the runtime interpreter and appends this environment's
site-packages with site.addsitedir (which runs its .pth files: editable installs work); where both have
a package, the runtime's copy is the one imported, and shadowed() names those. The venv's pyvenv.cfg
records the interpreter it was made for: after the image is rebuilt on another Python it is made anew.
"""

from __future__ import annotations

import configparser
import functools
import json
import os
import platform
import site
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from pathlib import Path

from unstuck.config import DEFAULT_PROJECT_ENV
from unstuck.logs import log

# What was installed, by content hash of each source, and for which interpreter (see dependencies).
STAMPS_FILE = "unstuck-installed.json"
# Why the last install (or the project's own install) failed, one line; absent after a success.
FAILED_FILE = "unstuck-install-failed.txt"


class EnvError(Exception):
    """The project environment cannot be made; str() is one line saying why and what to do."""


def location(environ=None) -> Path:
    """UNSTUCK_PROJECT_ENV, validated by config.load at start (a relative path is refused there)."""
    environ = os.environ if environ is None else environ
    return Path(environ.get("UNSTUCK_PROJECT_ENV", "").strip() or DEFAULT_PROJECT_ENV)


def base_interpreter() -> Path:
    """The interpreter the runtime venv was made from: the project environment is made from it too."""
    return Path(getattr(sys, "_base_executable", None) or sys.executable)


def current_interpreter() -> str:
    return f"Python {platform.python_version()} at {base_interpreter().parent}"


def made_for(env: Path) -> str | None:
    """The interpreter pyvenv.cfg says `env` was made for, in current_interpreter()'s words; None if no venv."""
    parser = configparser.ConfigParser()
    try:
        # pyvenv.cfg is `key = value` lines without a section header.
        parser.read_string("[venv]\n" + (env / "pyvenv.cfg").read_text())
    except (OSError, UnicodeDecodeError, configparser.Error):
        return None
    cfg = parser["venv"]
    version = cfg.get("version_info") or cfg.get("version") or "?"
    return f"Python {version} at {cfg.get('home', '?')}"


@functools.lru_cache(maxsize=8)  # sysconfig works it out anew on each call (~0.7 ms of every reload)
def site_packages(env: Path) -> Path:
    """Where packages are installed in `env` (the venv scheme, whatever the platform's default scheme is:
    Debian's points elsewhere)."""
    return Path(sysconfig.get_path("purelib", "venv", vars={"base": str(env), "platbase": str(env)}))


def python(env: Path) -> Path:
    return env / "bin" / "python"


def uv_command() -> str:
    from uv import find_uv_bin

    return find_uv_bin()


def uv_environment(env: Path) -> dict[str, str]:
    """The environment uv runs in: it targets `env`, never downloads an interpreter of its own (uv sync
    would otherwise replace the environment when .python-version names another Python), and prints plain
    lines. It trusts the system's CA store as pip does (UV_SYSTEM_CERTS; uv's own bundled roots otherwise
    refuse a company proxy's CA that the image added), unless the environment says otherwise; SSL_CERT_FILE
    and the rest of the container's environment pass through."""
    return {"UV_SYSTEM_CERTS": "1", **os.environ, "UV_PROJECT_ENVIRONMENT": str(env), "VIRTUAL_ENV": str(env),
            "UV_PYTHON_DOWNLOADS": "never", "NO_COLOR": "1"}


def ensure(env: Path) -> None:
    """Make `env` if it is missing, or anew if it was made for another interpreter (one log line each)."""
    was = made_for(env)
    now = current_interpreter()
    if was == now:
        return
    if was is None:
        if env.exists() and any(env.iterdir()):
            raise EnvError(f"UNSTUCK_PROJECT_ENV={env} is a directory that is not a virtualenv; "
                           "empty it or point UNSTUCK_PROJECT_ENV at another path")
        log.info("creating the project environment at %s (%s)", env, now)
    else:
        log.info("the project environment at %s was made for %s; making it anew for %s", env, was, now)
    args = [uv_command(), "venv", "--quiet", "--clear", "--python", str(base_interpreter()), str(env)]
    result = subprocess.run(args, capture_output=True, text=True, env=uv_environment(env))
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise EnvError(f"cannot create the project environment at {env}: {detail[-1] if detail else result.returncode}")


def compile_in_background(env: Path) -> subprocess.Popen:
    """Compile the bytecode of what `env` has, at low priority, while the app already runs: compileall
    skips up-to-date files and writes each .pyc atomically, so an import meanwhile reads either none or a
    whole one. The interpreter is the environment's own (the same Python as the app's)."""
    started = time.monotonic()
    proc = subprocess.Popen([str(python(env)), "-m", "compileall", "-q", "-j", "0", str(site_packages(env))],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:  # behind the app's own start (not preexec_fn: the reloader has threads)
        os.setpriority(os.PRIO_PROCESS, proc.pid, 10)
    except OSError:
        pass

    def reap() -> None:
        log.debug("bytecode of %s compiled in %.1f s (exit code %s)", env, time.monotonic() - started, proc.wait())

    threading.Thread(target=reap, daemon=True, name="compile").start()
    return proc


def read_stamps(env: Path) -> dict:
    try:
        data = json.loads((env / STAMPS_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_stamps(env: Path, data: dict) -> None:
    """Atomically: a container stopped mid-write must not leave a stamp file that claims anything."""
    fd, tmp = tempfile.mkstemp(dir=env, prefix=".stamps-")
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=1, sort_keys=True)
    os.replace(tmp, env / STAMPS_FILE)


def write_failure(env: Path, summary: str | None) -> None:
    """The last install's failure in one line (None: it succeeded), for the ModuleNotFoundError hint, which
    runs in the app's process and otherwise could not tell "not declared" from "declared, install failed"."""
    path = env / FAILED_FILE
    try:
        if summary:
            path.write_text(summary + "\n")
        else:
            path.unlink(missing_ok=True)
    except OSError:
        pass  # the hint then falls back to "see the install error in `unstuck status`"


def read_failure(env: Path) -> str | None:
    try:
        return (env / FAILED_FILE).read_text().strip() or None
    except (OSError, UnicodeDecodeError):
        return None


def add_site_packages(env: Path) -> None:
    """Append `env`'s site-packages to sys.path, running its .pth files (editable installs), once."""
    path = site_packages(env)
    if path.is_dir() and str(path) not in sys.path:
        site.addsitedir(str(path))


def activate(app_dir: Path, env: Path | None = None) -> str | None:
    """For an app generation (and the warm process), before anything of the app is imported: the
    project's Python check, then its packages on sys.path. Returns what is wrong when this Python does not
    fit the project (nothing is added then), else None. The Failure a generation serves for it is made in
    unstuck.app.loading.activate_project: the project's environment knows nothing of error pages (the
    error pages' hints read the project's state, so the other way round would be a cycle)."""
    from unstuck.project.python_requirement import preflight

    problem = preflight(app_dir)
    if problem:
        return problem
    add_site_packages(env or location())
    return None


def _versions(path: Path) -> dict[str, str]:
    from importlib import metadata  # imported here: the reload server's start does not need it

    from packaging.utils import canonicalize_name

    found = {}
    for dist in metadata.distributions(path=[str(path)]):
        name = dist.metadata["Name"]
        if name:
            found[canonicalize_name(name)] = dist.version
    return found


def shadowed(env: Path) -> list[str]:
    """Packages the project environment has in another version than unstuck's runtime: the app imports the
    runtime's (its site-packages come first), so the project's pin does not hold for them."""
    mine, runtime = _versions(site_packages(env)), _versions(site_packages(Path(sys.prefix)))
    return [f"{name} {runtime[name]} (the project environment has {mine[name]})"
            for name in sorted(mine.keys() & runtime.keys()) if mine[name] != runtime[name]]
