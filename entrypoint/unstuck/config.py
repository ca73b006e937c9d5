"""Settings from environment variables, validated up front.

Every problem becomes one ConfigError line naming the variable, the bad value and what is accepted, so
the entrypoint can print it and exit 2 instead of letting a traceback scroll past in the logs.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping


class ConfigError(ValueError):
    """A setting is wrong; str() is the one-line message for the user."""


RELOADERS = ("unstuck", "uvicorn")
LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")
ERROR_PAGES = ("on", "off", "locals")  # UNSTUCK_ERROR_PAGES: 1, 0, locals
# module:attribute, or module:factory() as Flask's CLI writes an app factory (called with no arguments).
_MODULE_RE = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*(\(\))?$")

# Directories and files that never trigger a reload: virtualenvs, VCS data, caches, logs and editor
# droppings. watchfiles' DefaultFilter covers most; these are added on top of it.
DEFAULT_IGNORE = ("venv", "*.log", "*.tmp", "*.swp", "*.swx", "4913", "*~", ".#*")
# The requirements/ directory's usual names are listed (patterns match a name, not a path): an edit of
# requirements/base.txt must reinstall the dev set that includes it.
DEFAULT_WATCH = ("*.py", ".env", "*.env", "requirements*.txt", "*-requirements.txt", "base.txt", "dev.txt",
                 "development.txt", "local.txt", "production.txt", "prod.txt", "test.txt", "uv.lock", "poetry.lock",
                 ".python-version", "Procfile", "*.html", "*.jinja", "*.jinja2", "*.j2", "*.toml", "*.yaml", "*.yml",
                 "*.ini", "*.cfg")
# The app's own dependencies (see project_env): kept by one named volume at /home/app/.unstuck.
DEFAULT_PROJECT_ENV = "/home/app/.unstuck/venv"


@dataclass(frozen=True)
class Settings:
    app_module: str  # "" = find the app in app_dir (unstuck.app.discovery), in each worker generation
    app_dir: Path
    host: str
    port: int
    reloader: str
    grace: float
    backoff_max: float
    watch_patterns: tuple[str, ...]
    ignore_patterns: tuple[str, ...]
    force_polling: bool | None
    poll_ms: int
    log_level: str
    run_dir: Path
    warm: bool
    livereload: bool
    debug: bool
    debug_port: int
    procfile: Path
    worker_grace: float
    project_env: Path
    app_layer: bool = True
    layer_copy_ahead: bool = True  # a slow-to-import app layer keeps its copy forked ahead (layer_successor.py)
    requirements: tuple[str, ...] = ()  # UNSTUCK_REQUIREMENTS; () = chosen by dependency_set
    error_pages: str = "on"  # one of ERROR_PAGES: a request's uncaught exception gets unstuck's page
    safety_poll_ms: int = 5000
    release_timeout: float = 600.0  # seconds the Procfile's release may run before it is stopped; 0: no limit

    @property
    def state_file(self) -> Path:
        return self.run_dir / "state.json"

    @property
    def supervisor_socket(self) -> Path:
        return self.run_dir / "supervisor.sock"

    @property
    def supervisord_conf(self) -> Path:
        return self.run_dir / "supervisord.conf"


def _number(env: Mapping[str, str], name: str, default: float, low: float, high: float,
            unit: str = "seconds") -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number; set it to {unit} between {low:g} and {high:g}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name}={raw!r} is out of range; set it to {unit} between {low:g} and {high:g}")
    return value


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, str(default)).strip() or str(default)
    if not raw.isdigit() or not 1 <= int(raw) <= 65535:
        raise ConfigError(f"{name}={raw!r} is not a port number; use an integer from 1 to 65535")
    return int(raw)


def _patterns(env: Mapping[str, str], name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    raw = env.get(name)
    if raw is None or not raw.strip():
        return default
    # A pattern matches one file or directory name (fnmatch), not a path.
    items = tuple(p.strip() for p in raw.split(",") if p.strip())
    slashed = [p for p in items if "/" in p]
    if slashed:
        raise ConfigError(f"{name}: {slashed[0]!r} contains '/'; patterns match a file or directory name, e.g. *.py")
    return items


def _flag(env: Mapping[str, str], name: str, default: str = "auto") -> bool | None:
    """1/0 (or true/false, yes/no, on/off); "auto" (None) only where the default is auto."""
    raw = env.get(name, default).strip().lower() or default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    if raw == "auto" and default == "auto":
        return None
    accepted = "1, 0 or auto" if default == "auto" else "1 or 0"
    raise ConfigError(f"{name}={raw!r} is not accepted; use {accepted}")


def requirement_names(raw: str) -> tuple[str, ...]:
    """UNSTUCK_REQUIREMENTS: comma-separated paths relative to APP_DIR; empty = chosen automatically."""
    return tuple(p.strip() for p in raw.split(",") if p.strip())


def _requirements(env: Mapping[str, str], app_dir: Path, check_dirs: bool) -> tuple[str, ...]:
    names = requirement_names(env.get("UNSTUCK_REQUIREMENTS", ""))
    for name in names:
        path = Path(name)
        if path.is_absolute() or ".." in path.parts:
            raise ConfigError(f"UNSTUCK_REQUIREMENTS: {name!r} is not a path inside APP_DIR; use paths relative to "
                              f"{app_dir}, e.g. requirements/local.txt")
        if not (name.endswith(".txt") or path.name in ("pyproject.toml", "uv.lock", "poetry.lock")):
            raise ConfigError(f"UNSTUCK_REQUIREMENTS: {name!r} is not a requirements file; name .txt requirements "
                              "files, a pyproject.toml, a uv.lock or a poetry.lock")
        if check_dirs and not (app_dir / path).is_file():
            raise ConfigError(f"UNSTUCK_REQUIREMENTS: {name!r} does not exist under {app_dir}; fix the path or "
                              "leave UNSTUCK_REQUIREMENTS empty to choose automatically")
    return names


def _error_pages(env: Mapping[str, str]) -> str:
    raw = env.get("UNSTUCK_ERROR_PAGES", "1").strip().lower() or "1"
    if raw == "locals":
        return "locals"
    try:
        return "on" if _flag({"UNSTUCK_ERROR_PAGES": raw}, "UNSTUCK_ERROR_PAGES", default="1") else "off"
    except ConfigError:
        raise ConfigError(f"UNSTUCK_ERROR_PAGES={raw!r} is not accepted; use 1, 0 or locals") from None


def _safety_poll_ms(env: Mapping[str, str]) -> int:
    # 0 turns the safety poll off; below a second it would cost as much as polling (UNSTUCK_POLL=1).
    name, raw = "UNSTUCK_POLL_SAFETY_MS", env.get("UNSTUCK_POLL_SAFETY_MS", "").strip()
    if raw == "0":
        return 0
    try:
        return int(_number(env, name, 5000, 1000, 600000, "milliseconds"))
    except ConfigError as exc:
        raise ConfigError(f"{exc}, or 0 to turn it off") from None


def _release_timeout(env: Mapping[str, str]) -> float:
    try:
        return _number(env, "UNSTUCK_RELEASE_TIMEOUT", 600.0, 0.0, 86400.0)
    except ConfigError as exc:
        raise ConfigError(f"{exc} (0: no limit)") from None


def load(env: Mapping[str, str] | None = None, *, check_dirs: bool = True) -> Settings:
    """Read and validate the settings; raise ConfigError with a one-line message on the first problem."""
    env = os.environ if env is None else env

    app_module = env.get("APP_MODULE", "").strip()
    if app_module and not _MODULE_RE.match(app_module):
        raise ConfigError(
            f"APP_MODULE={app_module!r} is not an import string; use 'package.module:attribute' (e.g. app.main:app), "
            "'package.module:factory()', or leave it empty to find the app"
        )

    port = _port(env, "PORT", 8000)
    debug_port = _port(env, "UNSTUCK_DEBUG_PORT", 5678)
    if debug_port == port:
        raise ConfigError(f"UNSTUCK_DEBUG_PORT={debug_port} is the app's PORT; use another port, e.g. 5678")

    host = env.get("HOST", "0.0.0.0").strip()
    if not host or any(c.isspace() for c in host):
        raise ConfigError(f"HOST={host!r} is not an address; use an IP address such as 0.0.0.0 or 127.0.0.1")

    reloader = env.get("UNSTUCK_RELOADER", "unstuck").strip().lower()
    if reloader not in RELOADERS:
        raise ConfigError(f"UNSTUCK_RELOADER={reloader!r} is not accepted; use one of: {', '.join(RELOADERS)}")

    log_level = env.get("LOG_LEVEL", "info").strip().lower()
    if log_level not in LOG_LEVELS:
        raise ConfigError(f"LOG_LEVEL={log_level!r} is not accepted; use one of: {', '.join(LOG_LEVELS)}")

    app_dir = Path(env.get("APP_DIR", "/workspace").strip() or "/workspace")
    if not app_dir.is_absolute():
        raise ConfigError(f"APP_DIR={str(app_dir)!r} is relative; use an absolute path such as /workspace")
    if check_dirs and not app_dir.is_dir():
        raise ConfigError(
            f"APP_DIR={str(app_dir)!r} does not exist in the container; mount your project there "
            f"(compose: volumes: - ./app:{app_dir}/app) or set APP_DIR"
        )

    procfile = Path(env.get("UNSTUCK_PROCFILE", "").strip() or app_dir / "Procfile")
    if not procfile.is_absolute():
        procfile = app_dir / procfile
    project_env = Path(env.get("UNSTUCK_PROJECT_ENV", "").strip() or DEFAULT_PROJECT_ENV)
    if not project_env.is_absolute():
        raise ConfigError(f"UNSTUCK_PROJECT_ENV={str(project_env)!r} is relative; use an absolute path such as "
                          "/home/app/.unstuck/venv")

    return Settings(
        app_module=app_module,
        app_dir=app_dir,
        host=host,
        port=port,
        reloader=reloader,
        grace=_number(env, "UNSTUCK_GRACE", 2.0, 0.0, 60.0),
        backoff_max=_number(env, "UNSTUCK_BACKOFF_MAX", 10.0, 0.5, 300.0),
        watch_patterns=_patterns(env, "UNSTUCK_WATCH", DEFAULT_WATCH),
        ignore_patterns=_patterns(env, "UNSTUCK_IGNORE", DEFAULT_IGNORE),
        force_polling=_flag(env, "UNSTUCK_POLL"),
        poll_ms=int(_number(env, "UNSTUCK_POLL_MS", 500, 50, 10000, "milliseconds")),
        safety_poll_ms=_safety_poll_ms(env),
        log_level=log_level,
        run_dir=Path(env.get("UNSTUCK_RUN_DIR", "/run/unstuck").strip() or "/run/unstuck"),
        warm=_flag(env, "UNSTUCK_WARM", default="1"),
        livereload=_flag(env, "UNSTUCK_LIVERELOAD", default="0"),
        debug=_flag(env, "UNSTUCK_DEBUG", default="0"),
        debug_port=debug_port,
        procfile=procfile,
        worker_grace=_number(env, "UNSTUCK_WORKER_GRACE", 5.0, 0.0, 60.0),
        release_timeout=_release_timeout(env),
        project_env=project_env,
        app_layer=_flag(env, "UNSTUCK_APP_LAYER", default="1"),
        layer_copy_ahead=_flag(env, "UNSTUCK_APP_LAYER_COPY_AHEAD", default="1"),
        requirements=_requirements(env, app_dir, check_dirs),
        error_pages=_error_pages(env),
    )
