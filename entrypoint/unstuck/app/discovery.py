"""Find the app to serve in APP_DIR the way the frameworks' own CLIs find it, without importing anything.

Users mount a project of any layout at APP_DIR and expect what `fastapi dev`, `flask run` or Django's
`manage.py runserver` would serve. This reads files and parses them with `ast` only: it never runs user
code, so it is safe (and cheap) in every worker generation (a file created later is found at the next
reload) and testable on temp trees. The worker imports what it names.

No library does this statically: fastapi-cli (`fastapi_cli.discover`), Flask (`flask.cli.find_best_app`,
`prepare_import`) and Litestar (`litestar.cli._utils._autodiscover_app`) each import candidate modules
and check `isinstance` against their own class, which needs their framework installed and runs user code.
Their search order is reproduced here; where two disagree the merge keeps both orders.

The order (the first match wins):

1. `APP_MODULE`, when set: always wins (`package.module:attribute`, or `package.module:factory()`).
2. `pyproject.toml` at APP_DIR, `[tool.fastapi] entrypoint = "module:attribute"` (fastapi-cli's setting).
3. A Django project: `manage.py` at APP_DIR, else in one directory below it (what `django-admin
   startproject mysite` without `.` creates; that directory goes on sys.path). The settings module is
   `DJANGO_SETTINGS_MODULE` from the environment, else the one manage.py sets
   (`os.environ.setdefault(...)`). Then, as `runserver` with Channels/Daphne and plain `runserver` do:
   the settings' `ASGI_APPLICATION`, else `asgi.py` beside the settings (`application`), else the
   settings' `WSGI_APPLICATION`, else `wsgi.py` (`application`).
4. Files, directory by directory: APP_DIR, `app/`, `src/`, then each package `src/<name>/` (src layout:
   `src` goes on sys.path). In each directory: `asgi.py`, `wsgi.py`, `main.py`, `app.py`, `api.py`, then,
   in `app/` and `src/<name>/`, the package's own `__init__.py`. (fastapi-cli tries main, app, api at
   the root then in app/; flask run tries wsgi then app; servers' entry files asgi/wsgi go first.)
   In each file, as `flask.cli.find_best_app` does: a module-level `app`, `application` or `api`
   (fastapi-cli: app, api); else the only module-level object made by a known framework class
   (`x = FastAPI()`, `Flask(...)`, `Litestar(...)`, ...); else a function `create_app` or `make_app`
   that takes no required argument: an app factory, called with none.
   The import name of a file follows fastapi-cli and Flask's `prepare_import`: walk up while the
   directory has `__init__.py` (never above APP_DIR); the directory above the top package goes on
   sys.path when it is not APP_DIR itself.
   A candidate file that does not parse is chosen as it is: importing it shows the user the error.
"""

from __future__ import annotations

import ast
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

APP_NAMES = ("app", "application", "api")
FACTORY_NAMES = ("create_app", "make_app")
ENTRY_FILES = ("asgi.py", "wsgi.py", "main.py", "app.py", "api.py")
# Calls whose result is an ASGI or WSGI app: what "the only app object in the module" is recognised by.
APP_CLASSES = frozenset({
    "FastAPI", "Flask", "Quart", "Starlette", "Litestar", "Starlite", "Sanic", "Bottle", "Esmerald", "Lilya",
    "FlaskApp", "AsyncApp", "get_asgi_application", "get_wsgi_application",
})
# Calls whose result is often named app/api but is no app to serve (routers, blueprints, CLI apps...).
NOT_APP_CLASSES = frozenset({
    "APIRouter", "Blueprint", "Api", "Namespace", "Resource", "Typer", "Celery", "Group", "Router",
})
DJANGO_SETTINGS = "DJANGO_SETTINGS_MODULE"
HOW_TO_SET = "set APP_MODULE=package.module:attribute (e.g. APP_MODULE=main:app, or main:create_app() for a factory)"


@dataclass(frozen=True)
class Found:
    import_string: str  # "module:attribute"
    factory: bool  # call the attribute (with no arguments) to get the app
    reason: str  # one line: why this one
    sys_path: tuple[str, ...] = ()  # directories to put in front of sys.path (APP_DIR is always there)
    environ: tuple[tuple[str, str], ...] = ()  # os.environ.setdefault before importing (Django's settings)

    def describe(self) -> str:
        call = "()" if self.factory else ""
        return f"found {self.import_string}{call}: {self.reason}"

    def to_dict(self) -> dict:
        return {"import": self.import_string + ("()" if self.factory else ""), "reason": self.reason}


@dataclass(frozen=True)
class NotFound:
    app_dir: Path
    notes: tuple[str, ...] = field(default_factory=tuple)  # candidates that exist, and why they do not count

    def message(self) -> str:
        return (f"no app found in {self.app_dir} (looked for manage.py, pyproject.toml [tool.fastapi], "
                f"{', '.join(ENTRY_FILES)} in ./, app/, src/, src/*/); {HOW_TO_SET}")

    def details(self) -> str:
        lines = [
            f"unstuck looked in {self.app_dir}, in this order:",
            "  1. APP_MODULE (not set)",
            "  2. pyproject.toml: [tool.fastapi] entrypoint = \"module:attribute\"",
            "  3. manage.py (here or one directory below) -> DJANGO_SETTINGS_MODULE -> asgi.py / wsgi.py",
            f"  4. {', '.join(ENTRY_FILES)} in ./, app/, src/, src/<package>/ (and those packages' __init__.py),",
            f"     for a module-level {' / '.join(APP_NAMES)}, the only object made by {', '.join(sorted(APP_CLASSES)[:6])}"
            f"..., or a factory {' / '.join(FACTORY_NAMES)}() taking no arguments",
        ]
        if self.notes:
            lines += ["", "Found, but not an app:"] + [f"  - {note}" for note in self.notes]
        lines += ["", f"To serve something else, {HOW_TO_SET}.",
                  "Creating one of the files above is picked up at the next save, without a restart."]
        return "\n".join(lines) + "\n"


def parse_app_module(app_module: str) -> Found:
    """APP_MODULE as the user wrote it: `module:attr`, or `module:factory()` (Flask's CLI syntax)."""
    factory = app_module.endswith("()")
    return Found(app_module[:-2] if factory else app_module, factory, "APP_MODULE")


def resolve(app_module: str, app_dir: Path, environ: Mapping[str, str] | None = None) -> Found | NotFound:
    """APP_MODULE when set, else what discover() finds."""
    if app_module.strip():
        return parse_app_module(app_module.strip())
    return discover(app_dir, os.environ if environ is None else environ)


def target(app_module: str, app_dir: Path) -> str:
    """What the next generation will load, for the reloader's log lines and its "starting" page before the
    worker reports: `app.main:app`, `pkg:create_app()`, or `no app found`."""
    found = resolve(app_module, app_dir)
    return found.to_dict()["import"] if isinstance(found, Found) else "no app found"


def discover(app_dir: Path, environ: Mapping[str, str] | None = None) -> Found | NotFound:
    environ = {} if environ is None else environ
    notes: list[str] = []
    for step in (_from_pyproject, _from_django, _from_files):
        found = step(app_dir, environ, notes)
        if found is not None:
            return found
    return NotFound(app_dir, tuple(notes))


# -- 2. pyproject.toml ------------------------------------------------------------------------------

def _from_pyproject(app_dir: Path, environ, notes: list[str]) -> Found | None:
    path = app_dir / "pyproject.toml"
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError):
        return None
    except tomllib.TOMLDecodeError as exc:
        notes.append(f"pyproject.toml does not parse ({exc}); its [tool.fastapi] entrypoint was not read")
        return None
    entrypoint = data.get("tool", {}).get("fastapi", {}).get("entrypoint")
    if isinstance(entrypoint, str) and ":" in entrypoint:
        return Found(entrypoint.strip(), False, "pyproject.toml [tool.fastapi] entrypoint")
    if entrypoint is not None:
        notes.append(f"pyproject.toml [tool.fastapi] entrypoint={entrypoint!r} is not 'module:attribute'")
    return None


# -- 3. Django ------------------------------------------------------------------------------------

def _from_django(app_dir: Path, environ, notes: list[str]) -> Found | None:
    manage = app_dir / "manage.py"
    if not manage.is_file():
        below = sorted(p for p in app_dir.glob("*/manage.py") if p.is_file())
        if not below:
            return None
        if len(below) > 1:
            notes.append(f"several manage.py one level down ({', '.join(_rel(p, app_dir) for p in below)}); "
                         f"using {_rel(below[0], app_dir)}")
        manage = below[0]
    root = manage.parent
    sys_path = () if root == app_dir else (str(root),)
    where = _rel(manage, app_dir)

    tree = _parse(manage)
    if tree is None:  # importing it shows the user the syntax error
        return Found(_module_name(manage, root) + ":application", False, f"{where} does not parse", sys_path)
    settings = environ.get(DJANGO_SETTINGS)
    reason = f"{DJANGO_SETTINGS}={settings} (environment)"
    if not settings:
        settings = _settings_from_manage(tree)
        reason = f"{where} sets {DJANGO_SETTINGS}={settings}"
    if not settings:
        notes.append(f"{where} does not set {DJANGO_SETTINGS} (os.environ.setdefault(...)); set it or APP_MODULE")
        return None
    env = ((DJANGO_SETTINGS, settings),)

    settings_tree = None
    settings_file = _module_file(root, settings)
    if settings_file is not None:
        settings_tree = _parse(settings_file)
    packages = settings.split(".")[:-1]
    for kind in ("ASGI", "WSGI"):
        declared = _string_setting(settings_tree, f"{kind}_APPLICATION") if settings_tree else None
        if declared and "." in declared:
            module, _, attr = declared.rpartition(".")
            return Found(f"{module}:{attr}", False, f"{reason}, whose {kind}_APPLICATION is {declared}", sys_path, env)
        # The entry module beside the settings (mysite/asgi.py for mysite.settings), innermost package first.
        for depth in range(len(packages), 0, -1):
            package = packages[:depth]
            entry = root.joinpath(*package, f"{kind.lower()}.py")
            if entry.is_file():
                entry_tree = _parse(entry)
                if entry_tree is None or "application" in _bindings(entry_tree):
                    return Found(".".join([*package, kind.lower()]) + ":application", False, reason, sys_path, env)
                notes.append(f"{_rel(entry, app_dir)} defines no 'application'")
    notes.append(f"{where} names settings {settings}, but neither asgi.py nor wsgi.py beside them defines 'application'")
    return None


def _settings_from_manage(tree: ast.Module) -> str | None:
    """The value of os.environ.setdefault("DJANGO_SETTINGS_MODULE", "...") or os.environ[...] = "..."."""
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "setdefault"
                and len(node.args) == 2 and _const(node.args[0]) == DJANGO_SETTINGS and _const(node.args[1])):
            return _const(node.args[1])
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Subscript):
            if _const(node.targets[0].slice) == DJANGO_SETTINGS and _const(node.value):
                return _const(node.value)
    return None


def _string_setting(tree: ast.Module, name: str) -> str | None:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return _const(node.value)
    return None


def _module_file(root: Path, dotted: str) -> Path | None:
    base = root.joinpath(*dotted.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


# -- 4. entry files -------------------------------------------------------------------------------

def _search_dirs(app_dir: Path) -> list[tuple[Path, bool]]:
    """(directory, whether its own __init__.py is a candidate) in search order."""
    dirs = [(app_dir, False), (app_dir / "app", True), (app_dir / "src", False)]
    src = app_dir / "src"
    if src.is_dir():
        dirs += [(p, True) for p in sorted(src.iterdir()) if p.is_dir() and not p.name.startswith((".", "_"))
                 and p.name.isidentifier()]
    return [(d, package) for d, package in dirs if d.is_dir()]


def _from_files(app_dir: Path, environ, notes: list[str]) -> Found | None:
    for directory, package in _search_dirs(app_dir):
        names = list(ENTRY_FILES) + (["__init__.py"] if package else [])
        for name in names:
            path = directory / name
            if not path.is_file():
                continue
            found = _app_in_file(path, app_dir, notes)
            if found is not None:
                return found
    return None


def _app_in_file(path: Path, app_dir: Path, notes: list[str]) -> Found | None:
    module, sys_path = _import_name(path, app_dir)
    where = _rel(path, app_dir)
    tree = _parse(path)
    if tree is None:  # importing it shows the user the syntax error, which is what they need to see
        return Found(f"{module}:app", False, f"{where} does not parse", sys_path)
    bindings = _bindings(tree)
    for name in APP_NAMES:
        value = bindings.get(name)
        if name in bindings and _may_be_app(value):
            return Found(f"{module}:{name}", False, f"{where} defines {name}", sys_path)
    made = [(name, cls) for name, value in bindings.items() if (cls := _app_class(value))]
    if len(made) == 1:
        name, cls = made[0]
        return Found(f"{module}:{name}", False, f"{where} defines {name} = {cls}(...)", sys_path)
    if len(made) > 1:
        notes.append(f"{where} makes several apps ({', '.join(n for n, _ in made)}): set APP_MODULE to one")
        return None
    for name in FACTORY_NAMES:
        value = bindings.get(name)
        if isinstance(value, ast.FunctionDef):
            if _required_args(value):
                notes.append(f"{where}: {name}({', '.join(_required_args(value))}) needs arguments; "
                             f"unstuck calls a factory with none")
                continue
            return Found(f"{module}:{name}", True, f"{where} defines the app factory {name}()", sys_path)
    notes.append(f"{where} defines no {', '.join(APP_NAMES)}, app object, or {' / '.join(FACTORY_NAMES)}()")
    return None


def _import_name(path: Path, app_dir: Path) -> tuple[str, tuple[str, ...]]:
    """fastapi-cli's and Flask's rule: the module path grows while the parent directory is a package;
    the directory above the top package is the import root. Bounded by APP_DIR, the mount."""
    parts = [] if path.name == "__init__.py" else [path.stem]
    directory = path.parent
    if path.name == "__init__.py":
        parts.insert(0, directory.name)
        directory = directory.parent
    while directory != app_dir and (directory / "__init__.py").is_file() and directory.is_relative_to(app_dir):
        parts.insert(0, directory.name)
        directory = directory.parent
    return ".".join(parts), (() if directory == app_dir else (str(directory),))


# -- static reading -------------------------------------------------------------------------------

def _parse(path: Path) -> ast.Module | None:
    try:
        return ast.parse(path.read_bytes(), filename=str(path))
    except (SyntaxError, ValueError):  # ValueError: null bytes
        return None
    except OSError:
        return ast.Module(body=[], type_ignores=[])  # vanished or unreadable: nothing defined


def _bindings(tree: ast.Module) -> dict[str, ast.AST | None]:
    """Names bound at module level -> the node binding them (the value of an assignment, the def, or
    None for an import). Looks into module-level if/try/with blocks, not into `if __name__ == ...`."""
    out: dict[str, ast.AST | None] = {}

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    for name in _target_names(target):
                        out.setdefault(name, node.value if isinstance(target, ast.Name) else None)
            elif isinstance(node, ast.AnnAssign) and node.value is not None and isinstance(node.target, ast.Name):
                out.setdefault(node.target.id, node.value)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                out.setdefault(node.name, node)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                for alias in node.names:
                    if alias.name != "*":
                        out.setdefault(alias.asname or alias.name.split(".")[0], None)
            elif isinstance(node, ast.If):
                if not _is_main_guard(node.test):
                    visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                for block in (node.body, *(h.body for h in node.handlers), node.orelse, node.finalbody):
                    visit(block)
            elif isinstance(node, ast.With):
                visit(node.body)

    visit(tree.body)
    return out


def _target_names(target: ast.expr) -> list[str]:
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, (ast.Tuple, ast.List)):
        return [name for element in target.elts for name in _target_names(element)]
    return []


def _is_main_guard(test: ast.expr) -> bool:
    return (isinstance(test, ast.Compare) and isinstance(test.left, ast.Name) and test.left.id == "__name__")


def _callee(value: ast.AST | None) -> str | None:
    if isinstance(value, ast.Call):
        func = value.func
        if isinstance(func, ast.Name):
            return func.id
        if isinstance(func, ast.Attribute):
            return func.attr
    return None


def _app_class(value: ast.AST | None) -> str | None:
    callee = _callee(value)
    return callee if callee in APP_CLASSES else None


def _may_be_app(value: ast.AST | None) -> bool:
    """A name bound to a literal (`app = "x"`) or to a router/blueprint/CLI object is not the app."""
    if isinstance(value, (ast.Constant, ast.JoinedStr, ast.List, ast.Tuple, ast.Dict, ast.Set, ast.ListComp,
                          ast.DictComp, ast.SetComp)):
        return False
    return _callee(value) not in NOT_APP_CLASSES


def _required_args(func: ast.FunctionDef) -> list[str]:
    args = func.args
    positional = [*args.posonlyargs, *args.args]
    required = [a.arg for a in positional[:len(positional) - len(args.defaults)]]
    required += [a.arg for a, default in zip(args.kwonlyargs, args.kw_defaults) if default is None]
    return required


def _const(node: ast.AST | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _module_name(path: Path, root: Path) -> str:
    return ".".join(path.relative_to(root).with_suffix("").parts)


def _rel(path: Path, app_dir: Path) -> str:
    try:
        return str(path.relative_to(app_dir))
    except ValueError:
        return str(path)
