"""Turn APP_MODULE (or what discovery found) into the ASGI3 app a worker serves, or into a Failure.

uvicorn's loader turns every problem into one log line and `sys.exit`; here each way an app can fail to
load is told apart, because the user's fix differs: the module itself is missing (create the file or fix
APP_MODULE), an import inside the user's code fails (their file and line), the attribute is missing, the
object is not an app (say what it is and what is expected), a factory raises (their frames). The
traceback is kept in every case.
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path

from unstuck.app import discovery
from unstuck.errors import failure as failure_mod
from unstuck.app import interface
from unstuck.errors.failure import Failure
from unstuck.project import project_env
from unstuck.user_files import is_user_file


@dataclass
class Loaded:
    app: object | None  # the ASGI3 callable to serve; None when loading failed
    failure: Failure | None
    info: dict  # {"import": ..., "reason": ..., "interface": ...} for the reloader's log and status

    @property
    def lifespan(self) -> str:
        # A WSGI app has no lifespan; a2wsgi would only answer it on the app's behalf.
        return "off" if self.info.get("interface") == interface.WSGI else "auto"


def activate_project(app_dir: Path, env: Path | None = None) -> Failure | None:
    """Before anything of the app is imported: the project's Python check, then its packages on sys.path
    (project_env.activate). The Failure to serve instead of the app when this Python does not fit the
    project, else None."""
    problem = project_env.activate(app_dir, env)
    return Failure("environment", "IncompatiblePython", problem) if problem else None


def prepare(app_module: str, app_dir: Path, environ=None) -> discovery.Found | discovery.NotFound:
    """Resolve the app, and put discovery's sys.path entries and environment defaults in place (this runs
    in a worker, or the warm process's app layer, which are thrown away with them)."""
    found = discovery.resolve(app_module, app_dir, environ)
    if not isinstance(found, discovery.NotFound):
        for path in reversed(found.sys_path):
            if path not in sys.path:
                sys.path.insert(0, path)
        for name, value in found.environ:
            os.environ.setdefault(name, value)
        # What `flask run` sets before it imports the app: a module-level `app.run()` returns at once instead
        # of starting a second server, and a `wsgi.py` that patches the standard library for production
        # (gevent, eventlet) unless it is run from the CLI leaves it alone, as under `flask run`.
        os.environ.setdefault("FLASK_RUN_FROM_CLI", "true")
    return found


# A line of the user's code that patches the standard library (found to name it on the error page).
PATCHING = re.compile(r"\b(monkey\.patch_all|patch_all|monkey_patch)\s*\(")


def patched_stdlib(app_dir: Path) -> Failure | None:
    """The import patched the standard library (gevent, eventlet): uvicorn and asyncio then run on green
    sockets, and every answer stalls after its headers. Said on the page, with the line that did it."""
    monkey = sys.modules.get("gevent.monkey")
    patcher = sys.modules.get("eventlet.patcher")
    if monkey is not None and getattr(monkey, "is_anything_patched", lambda: False)():
        library = "gevent"
    elif patcher is not None and getattr(patcher, "is_monkey_patched", lambda _: False)("socket"):
        library = "eventlet"
    else:
        return None
    file = line = None
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if not isinstance(path, str) or not is_user_file(path, app_dir):
            continue
        try:
            text = Path(path).read_text(errors="replace")
        except OSError:
            continue
        for number, source in enumerate(text.splitlines(), 1):
            if PATCHING.search(source) and not source.lstrip().startswith(("#", "def ")):
                file, line = failure_mod.display_path(path, app_dir), number
                break
        if file:
            break
    where = f" ({file}:{line})" if file else ""
    return Failure("import", "MonkeyPatched",
                   f"importing the app patched the standard library with {library}{where}: unstuck serves with "
                   f"uvicorn on asyncio, which cannot run on patched sockets (answers would stall)",
                   file, line, hint=f"patch only when the production server runs, e.g. under "
                   f"`if not os.environ.get(\"FLASK_RUN_FROM_CLI\"):` (unstuck sets it, as `flask run` does), or "
                   f"set APP_MODULE to an app factory that does not patch")


def load(app_module: str, app_dir: Path, environ=None) -> Loaded:
    """Resolve, import and adapt the app."""
    found = prepare(app_module, app_dir, environ)
    if isinstance(found, discovery.NotFound):
        failure = Failure("discovery", "AppNotFound", found.message(), traceback=found.details())
        return Loaded(None, failure, {"import": None, "reason": found.message(), "interface": None})
    info = {"import": found.to_dict()["import"], "reason": found.reason, "interface": None}
    app, kind, failure = _load_found(found, app_dir)
    info["interface"] = kind
    if failure is None:
        failure = patched_stdlib(app_dir)
        app = app if failure is None else None
    return Loaded(app, failure, info)


def _label(found: discovery.Found) -> str:
    if found.reason == "APP_MODULE":
        return f"APP_MODULE={found.to_dict()['import']}"
    return f"{found.to_dict()['import']} ({found.reason})"


def _load_found(found: discovery.Found, app_dir: Path) -> tuple[object | None, str | None, Failure | None]:
    label = _label(found)
    module_name, _, attr = found.import_string.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if not _is_the_module_missing(exc, module_name, app_dir):
            return None, None, failure_mod.from_exception(exc, "import", app_dir)
        root = Path(found.sys_path[0]) if found.sys_path else app_dir
        expected = failure_mod.display_path(str(root.joinpath(*module_name.split("."))) + ".py", app_dir)
        message = (f"{label}: no module {module_name!r} under {root} (expected {expected}); "
                   "create it or fix APP_MODULE")
        return None, None, Failure("import", "ModuleNotFoundError", message, expected, None, _format(exc))
    except BaseException as exc:  # noqa: BLE001 - SystemExit and KeyboardInterrupt from user code are failures too
        return None, None, failure_mod.from_exception(exc, "import", app_dir)
    where = _module_file(module, app_dir)

    obj = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError as exc:
            message = f"{label}: module {module_name!r} has no attribute {attr!r}; define it or fix APP_MODULE"
            return None, None, Failure("import", "AttributeError", message, where, None, _format(exc))
        except BaseException as exc:  # noqa: BLE001 - a module __getattr__ of the user's that fails
            return None, None, failure_mod.from_exception(exc, "import", app_dir)

    kind = interface.detect(obj)
    if found.factory or kind.interface == interface.FACTORY:
        obj, failure = _call_factory(obj, kind, label, where, app_dir)
        if failure is not None:
            return None, None, failure
        kind = interface.detect(obj)
        if kind.interface in (None, interface.FACTORY):
            message = f"{label}: the factory returned {kind.what}, not an app; expected {interface.EXPECTED}"
            return None, None, Failure("import", "TypeError", message, where)
    elif kind.interface is None:
        message = f"{label} is {kind.what}, not an app; expected {interface.EXPECTED}; point APP_MODULE at your app"
        return None, None, Failure("import", "TypeError", message, where)

    try:
        obj = _as_runserver_would(obj, kind.interface)
    except BaseException as exc:  # noqa: BLE001 - the user's URLconf or views fail to import
        return None, kind.interface, failure_mod.from_exception(exc, "import", app_dir)
    return interface.as_asgi3(obj, kind.interface), kind.interface, None


def _call_factory(factory, kind: interface.Kind, label: str, where: str | None, app_dir: Path):
    if not callable(factory):
        return None, Failure("import", "TypeError", f"{label}: {kind.what} is not callable, so not an app factory; "
                                                     f"expected {interface.EXPECTED}", where)
    if inspect.iscoroutinefunction(factory):
        return None, Failure("import", "TypeError", f"{label}: the factory is async; unstuck calls a factory "
                                                     "synchronously: make it a plain def", where)
    try:
        params = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        params = []
    required = [p.name for p in params if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if required:
        message = (f"{label}: the factory needs arguments ({', '.join(required)}); unstuck calls it with none: "
                   "give them defaults, or point APP_MODULE at an app object")
        return None, Failure("import", "TypeError", message, where)
    try:
        return factory(), None
    except BaseException as exc:  # noqa: BLE001 - the factory's own failure, with the user's frames
        return None, failure_mod.from_exception(exc, "import", app_dir)


def _as_runserver_would(app, kind: str):
    """Django's handlers get what `manage.py runserver` gives them: the URLconf imported before serving
    (its system checks do), so a broken urls.py or views.py is a load failure with its file and line
    rather than a 500 on every request; and, with DEBUG and staticfiles, static files served (the
    admin's CSS)."""
    if not _is_django_handler(app):
        return app
    from django.conf import settings
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 - imports the URLconf and the views it names
    if not (settings.DEBUG and "django.contrib.staticfiles" in settings.INSTALLED_APPS):
        return app
    if kind == interface.WSGI:
        from django.contrib.staticfiles.handlers import StaticFilesHandler

        return StaticFilesHandler(app)
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

    return ASGIStaticFilesHandler(app)


def _is_django_handler(app) -> bool:
    # Looked up in sys.modules: Django is imported only if the user's app imported it.
    asgi, wsgi = sys.modules.get("django.core.handlers.asgi"), sys.modules.get("django.core.handlers.wsgi")
    return bool((asgi and isinstance(app, asgi.ASGIHandler)) or (wsgi and isinstance(app, wsgi.WSGIHandler)))


def _is_the_module_missing(exc: ModuleNotFoundError, module_name: str, app_dir: Path) -> bool:
    """The module APP_MODULE names (or a package above it) does not exist, as opposed to an import inside
    the user's code failing: then a frame of the user's code is on the traceback."""
    name = exc.name or ""
    if not name or not (module_name == name or module_name.startswith(name + ".")):
        return False
    return not any(is_user_file(f.filename, app_dir) for f in traceback.extract_tb(exc.__traceback__))


def _module_file(module, app_dir: Path) -> str | None:
    path = getattr(module, "__file__", None)
    return failure_mod.display_path(path, app_dir) if path else None


def _format(exc: BaseException) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
