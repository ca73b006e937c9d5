"""Which of the user's own modules a reload may find imported already, and when that is safe.

The warm process holds third-party modules only: each reload still imports all of the user's code, and in
a real service that is most of a reload (a dozen routers, SQL models, settings: 0.35 s of the bench's
realistic app, against 0.01 s for the one module that changed). So besides its spare, the warm process
keeps an *app layer*: a fork that has also imported the user's modules that are unlikely to change, and
that becomes the next generation when they did not.

Which to import: every module the app used, except the files edited lately ("hot") and every module
that imports one of them, directly or not: by an import statement of its source (a module imports its
parent packages too), or by having started its import at run time (import_order.py: Django's setup in
asgi.py imports every app's models, `include("blog.urls")` a URLconf). What is left is what a fresh process
would hold after importing those modules first: nothing that depends on the hot files, so nothing stale
once one of them changes. They are imported in the order a worker *started* importing them, so that the
entry module sets its framework up before the modules that need it, as in a fresh process; and once a
module is left out, what the framework imported after it is left to the worker too, to be imported in the
framework's order (a registry such as Wagtail's hooks fills in the order its modules are imported). Then the
layer loads the app as a worker does, in that order, up to the first hot module (paused_load.py).

When to use it (`usable`): only for a reload caused by saves of .py files that it has not imported, and
only if none of the files it imported changed since (their stat is compared). Anything else (a change to
any other kind of file, which a module may have read while it was imported, a restart without changes)
falls back to the plain spare: the layer may cost speed, never
correctness. A module imported dynamically (importlib, a plugin registry) that was not in the
sources' import statements is still covered: the layer reports every user module it ended up holding.
"""

from __future__ import annotations

import ast
import dataclasses
import os
from typing import Callable, Iterable

Stamp = tuple[int, int, int]  # mtime_ns, size, inode

# How many recently edited files stay out of the layer (a developer often goes back and forth between two
# or three files: a route and its model).
HOT_FILES = 3


def list_file(preload_file) -> str:
    """Where the reload server lists the user's modules ("name<TAB>file" lines), beside the preload file."""
    return str(preload_file) + ".app"


# One module the app used: its name, file, the user's module that was running when its import started ("" if
# none) and whether the framework (not that module's import statements) started it (import_order.py).
Listed = tuple[str, str, str, bool]


def listed(name: str, path: str, importer: str = "", framework: bool = False) -> Listed:
    return name, path, importer, bool(framework)


def list_line(entry) -> str:
    name, path, importer, framework = listed(*entry)
    return f"{name}\t{path}\t{importer}\t{int(framework)}\n"


def read_list(path: str) -> list[Listed]:
    """The list the reload server wrote (lines of list_line; a list kept from an older version has name and file
    only)."""
    try:
        with open(path) as f:
            fields = [line.rstrip("\n").split("\t") for line in f if "\t" in line]
    except OSError:
        return []
    return [listed(row[0], row[1], *(row[2:3] or [""]), *([row[3] == "1"] if len(row) > 3 else [])) for row in fields]


def stamp(path: str) -> Stamp | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size, st.st_ino


# What each file imports, by (name, path, is_package), with the file's stamp when it was read: the warm process
# plans a layer after every reload (several plans each: left_out), and parsing a large project's few hundred
# files takes most of a second.
_imports_read: dict[tuple[str, str, bool], tuple[Stamp | None, "Imports | None"]] = {}


@dataclasses.dataclass(frozen=True)
class Imports:
    """What a module's import statements import: `named`, the modules they name (`import a.b.c`: a.b.c; `from a.b
    import c`: a.b, and a.b.c if that is a module), whose code runs, or has run, before the statement goes on;
    `all`, those and every package above them and above the module itself (`import a.b.c` imports a and a.b
    first), which need only have started (a package whose own __init__ is running is found in sys.modules)."""

    named: frozenset[str]
    all: frozenset[str]


def _read(name: str, path: str, is_package: bool) -> Imports | None:
    key, now = (name, path, is_package), stamp(path)
    kept = _imports_read.get(key)
    if kept is None or kept[0] != now or now is None:
        kept = now, _read_imports(name, path, is_package)
        _imports_read[key] = kept
    return kept[1]


def imports_of(name: str, path: str, is_package: bool, known: set[str]) -> set[str]:
    """The modules among `known` that module `name` (source at `path`) imports at its top level or in its
    functions (any import statement: a function's import may run at import time), and its parent packages."""
    read = _read(name, path, is_package)
    if read is None:
        return set(known)  # unreadable (a broken save): assume it imports everything (then never preloaded)
    return set(read.all & known)


def named_imports_of(name: str, path: str, is_package: bool, known: set[str]) -> set[str]:
    """The modules among `known` that module `name`'s import statements name (Imports.named)."""
    read = _read(name, path, is_package)
    if read is None:
        return set(known)
    return set(read.named & known)


def _read_imports(name: str, path: str, is_package: bool) -> Imports | None:
    found = {name.rsplit(".", i)[0] for i in range(1, name.count(".") + 1)}
    named = set()
    try:
        with open(path, "rb") as f:
            tree = ast.parse(f.read(), path)
    except (OSError, SyntaxError, ValueError):
        return None
    package = name if is_package else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".") if package else []
                if node.level - 1 > len(parts):
                    continue
                parts = parts[:len(parts) - (node.level - 1)]
                base = ".".join(parts + ([base] if base else []))
            targets = [base] + [f"{base}.{alias.name}" if base else alias.name for alias in node.names]
        else:
            continue
        for target in targets:
            # `import a.b.c` imports a, a.b and a.b.c.
            pieces = target.split(".")
            found.update(".".join(pieces[:i]) for i in range(1, len(pieces) + 1))
            named.add(target)
    return Imports(frozenset(named), frozenset(found))


def plan(app_modules: list, hot: Iterable[str],
         read_imports: Callable[[str, str, bool, set[str]], set[str]] = imports_of) -> list[str]:
    """The user's modules to import into the layer, from `app_modules` (Listed entries, or (name, file) pairs, in
    the order their imports started): all but those of the hot files and every module that imports one of
    them, directly or not: by an import statement of its source, or by starting its import at run time
    (`django.setup()` in the entry module importing every app's models, `include("blog.urls")`).

    Once a module is left out, the modules the framework imported after it are left out too: their order is the
    framework's (Wagtail's hooks, Django's URLconfs register in the order they are imported), and the worker,
    importing what was left out, imports them in that order again. Modules the user's import statements
    imported are still taken: their order is that of the imports the layer replays."""
    entries = [listed(*entry) for entry in app_modules]
    excluded = _importers_of(entries, hot, read_imports)
    later = _framework_after(entries, excluded)
    return [entry[0] for entry in entries if entry[0] not in excluded and entry[0] not in later]


def at_stop(app_modules: list, hot: Iterable[str],
            read_imports: Callable[[str, str, bool, set[str]], set[str]] = imports_of,
            read_named: Callable[[str, str, bool, set[str]], set[str]] = named_imports_of
            ) -> list[tuple[str, frozenset[str]]]:
    """The modules plan() left out only because a package above them imports a hot module (mealie: every module
    of `mealie.routes` imports that package, whose __init__ imports the saved view's router): those from which no
    import statement leads to a hot module, and that the framework did not import after a left-out one. Once the
    layer's load of the app stops inside the hot module's import, those packages are running (in sys.modules),
    and such a module can be imported there, before the hot one, as plan()'s modules are. Each comes with the
    left-out modules that it, or a module of this list it imports, imports: they must all have started, or
    importing it would start one of them (warm_process.load_until_stop checks)."""
    entries = [listed(*entry) for entry in app_modules]
    excluded = _importers_of(entries, hot, read_imports)
    # Left to the worker whatever happens: what imports a hot module by its statements, and the framework's.
    stays_out = _importers_of(entries, hot, read_named) | _framework_after(entries, excluded)
    known = {entry[0] for entry in entries}
    imports = {name: read_imports(name, path, os.path.basename(path) == "__init__.py", known)
               for name, path, _, _ in entries if name in excluded and name not in stays_out}
    out = []
    for name in imports:  # in the app's order
        needs, seen, todo = set(), {name}, [name]
        while todo:
            for imported in imports[todo.pop()]:
                if imported in stays_out:
                    needs.add(imported)
                elif imported in imports and imported not in seen:
                    seen.add(imported)
                    todo.append(imported)
        out.append((name, frozenset(needs)))
    return out


def _importers_of(entries: list, hot: Iterable[str], read_imports) -> set[str]:
    """The modules of hot files, and every module that imports one of them (by `read_imports`, or by starting its
    import at run time), directly or not."""
    known = {entry[0] for entry in entries}
    files = {name: path for name, path, _, _ in entries}
    hot = {os.path.realpath(p) for p in hot}
    importers: dict[str, set[str]] = {name: set() for name in known}
    for name, path, importer, _ in entries:
        is_package = os.path.basename(path) == "__init__.py"
        for imported in read_imports(name, path, is_package, known):
            # Only modules the app imported have a file: a namespace package (no __init__.py) has none.
            if imported != name and imported in importers:
                importers[imported].add(name)
        if importer and importer != name and importer in known:
            importers[name].add(importer)
    excluded = {name for name in known if os.path.realpath(files[name]) in hot}
    todo = list(excluded)
    while todo:
        for importer in importers[todo.pop()]:
            if importer not in excluded:
                excluded.add(importer)
                todo.append(importer)
    return excluded


def _framework_after(entries: list, excluded: set[str]) -> set[str]:
    """The modules the framework imported after the first of `excluded` (see plan)."""
    later, passed_one = set(), False
    for name, _, _, framework in entries:
        if passed_one and framework:
            later.add(name)
        passed_one = passed_one or name in excluded
    return later


# Calls that make a module a framework's bootstrap (Django's asgi.py / wsgi.py): it sets the framework up and is
# almost never edited, unlike an entry module that defines the app's routes.
BOOTSTRAP_CALLS = {"get_asgi_application", "get_wsgi_application"}


def entry_files(app_modules: list, entry: str | None) -> list[str]:
    """The file of the module that defines the app, if the app imported it and it is not a framework's
    bootstrap (the hot guess before any save: leaving a bootstrap out would leave out all it sets up)."""
    paths = [path for name, path, _, _ in (listed(*e) for e in app_modules) if name == entry]
    return [path for path in paths if not _calls(path, BOOTSTRAP_CALLS)]


def _calls(path: str, names: set[str]) -> bool:
    try:
        with open(path, "rb") as f:
            tree = ast.parse(f.read(), path)
    except (OSError, SyntaxError, ValueError):
        return False
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            called = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
            if called in names:
                return True
    return False


def usable(held: dict[str, Stamp | None], changed: list[tuple[str, str]] | None,
           stat: Callable[[str], Stamp | None] = stamp, *, known: Iterable[str] | None = None) -> bool:
    """May a generation be the layer that imported the files `held` (real path -> stamp when imported), for
    a reload caused by `changed` ([kind, absolute path] pairs; None or empty: not caused by saves)? With `known`
    (the real paths of the modules the app imported on its last run), only for saves of those: a file the app
    did not import may be one it finds by listing a directory (a plugin folder scanned while the layer loaded
    the app), which the layer would go on without."""
    if not changed:
        return False
    known = set(known) if known is not None else None
    for _, path in changed:
        # Any kind (an editor's safe write shows as the file added or moved in): a .py file the layer does
        # not hold is one it never imported, and its stat says whether one it holds was replaced.
        if not path.endswith(".py") or os.path.realpath(path) in held or path in held:
            return False
        if known is not None and os.path.realpath(path) not in known:
            return False
    # Stamps may come as lists (through JSON).
    return all(stat(path) == (tuple(recorded) if recorded else None) for path, recorded in held.items())


def left_out(app_modules: list, hot: list[str], planner: Callable[[list, list[str]], list[str]] | None = None
             ) -> list[str]:
    """Which of the hot files (newest first) the layer leaves out: the newest always (the likeliest to be saved
    again), each older one unless leaving it out would take away more than half of what the layer holds
    without it (a module most others import: a model, settings). Such a file saved again is served from the
    spare, as without a layer; leaving it out would make every other save import most of the project again
    (on a FastAPI service of 367 modules, a leaf save 5 s instead of the layer's 1, for as long as the central
    file stayed among the recent saves: issue 18). Leaving in even the newest made every save of an app's
    central main.py a spare's full import (the bench's realistic app: 0.156 s -> 0.241 s)."""
    planner = planner or plan
    chosen: list[str] = list(hot[:1])
    holds = len(planner(app_modules, chosen))
    for path in hot[1:]:
        would_hold = len(planner(app_modules, chosen + [path]))
        if would_hold * 2 >= holds:
            chosen.append(path)
            holds = would_hold
    return chosen


def hot_after(previous: list[str], changed: list[tuple[str, str]] | None) -> list[str]:
    """The recently edited .py files, newest first, once `changed` is added."""
    fresh = [os.path.realpath(path) for kind, path in (changed or []) if path.endswith(".py")]
    merged = []
    for path in fresh + previous:
        if path not in merged:
            merged.append(path)
    return merged[:HOT_FILES]
