"""A hint for a ModuleNotFoundError: which file to declare the missing package in, or why it is missing.

unstuck installs the dependency set dependency_set.py chooses, in place, as soon as a file of it is saved
(dependencies.py): the useful hint is the file and the name to add, or, for a package that is declared,
why it is not there (the install failed: the reason; a file left out of the set; a group other than dev).
A module that is the user's own (a file under APP_DIR imported by the wrong name) gets no install hint.
"""

from __future__ import annotations

import os
import re
import sys
import tomllib
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from unstuck.project import dependencies, dependency_set, poetry

# Import name -> distribution names, for the well-known packages whose names differ (import yaml,
# install PyYAML). importlib.metadata.packages_distributions() only knows installed packages, which a
# missing one is not. The first name is the one suggested; any of them counts as declared.
DISTRIBUTIONS = {
    "yaml": ("PyYAML",),
    "PIL": ("pillow",),
    "cv2": ("opencv-python", "opencv-python-headless", "opencv-contrib-python", "opencv-contrib-python-headless"),
    "sklearn": ("scikit-learn",),
    "skimage": ("scikit-image",),
    "bs4": ("beautifulsoup4",),
    "dateutil": ("python-dateutil",),
    "dotenv": ("python-dotenv",),
    "jwt": ("PyJWT",),
    "jose": ("python-jose",),
    "psycopg2": ("psycopg2-binary", "psycopg2"),
    "MySQLdb": ("mysqlclient",),
    "attr": ("attrs",),
    "magic": ("python-magic",),
    "multipart": ("python-multipart",),
    "slugify": ("python-slugify",),
    "docx": ("python-docx",),
    "pptx": ("python-pptx",),
    "OpenSSL": ("pyOpenSSL",),
    "Crypto": ("pycryptodome",),
    "serial": ("pyserial",),
    "zmq": ("pyzmq",),
    "git": ("GitPython",),
    "fitz": ("PyMuPDF",),
    "websocket": ("websocket-client",),
    "socks": ("PySocks",),
    "telegram": ("python-telegram-bot",),
    "Bio": ("biopython",),
}

MAX_DIRS = 5000  # walked when looking for the user's own module elsewhere in APP_DIR


def for_exception(exc: BaseException, app_dir: Path, near: str | None = None) -> str | None:
    """The hint for `exc` (or the ModuleNotFoundError it was raised from), None when there is none.
    `near`: the failing user file, relative to APP_DIR (where a new requirements.txt would go)."""
    seen = 0
    while exc is not None and not isinstance(exc, ModuleNotFoundError) and seen < 10:
        exc, seen = exc.__cause__, seen + 1  # only explicit `raise ... from`: a handled import is no cause
    if not isinstance(exc, ModuleNotFoundError) or not exc.name:
        return None
    return for_missing_module(exc.name, app_dir, near)


def for_missing_module(name: str, app_dir: Path, near: str | None = None) -> str | None:
    top = name.partition(".")[0]
    if (app_dir / top).is_dir() or (app_dir / f"{top}.py").is_file():
        expected = name.replace(".", "/")
        return f"no module {name!r} under {app_dir}: neither {expected}.py nor {expected}/ exists; check the import"
    elsewhere = _find_own_module(top, app_dir)
    if elsewhere is not None:
        package = ".".join(elsewhere.parent.parts)
        return (f"there is {elsewhere}, but imports are resolved from {app_dir}: import it as "
                f"'{package}.{name}' (or with a relative import inside {elsewhere.parent}/)")
    if top in sys.stdlib_module_names:
        return None  # part of Python itself: nothing to declare
    names = DISTRIBUTIONS.get(top, (top,))
    return _install_hint(names, app_dir, near)


def _find_own_module(top: str, app_dir: Path) -> Path | None:
    """The shallowest `top.py` or `top/` package below APP_DIR's root, relative to APP_DIR."""
    found: list[Path] = []
    walked = 0
    for directory, subdirs, files in os.walk(app_dir):
        walked += 1
        subdirs[:] = sorted(d for d in subdirs if d not in dependency_set.SKIP_DIRS and not d.startswith("."))
        rel = Path(directory).relative_to(app_dir)
        if rel != Path("."):
            if f"{top}.py" in files:
                found.append(rel / f"{top}.py")
            if top in subdirs and (Path(directory, top, "__init__.py")).is_file():
                found.append(rel / top)
        if walked >= MAX_DIRS:
            break
    return min(found, key=lambda p: (len(p.parts), str(p))) if found else None


def _install_hint(names: tuple[str, ...], app_dir: Path, near: str | None) -> str:
    from unstuck.project import project_env

    wanted = [canonicalize_name(n) for n in names]
    try:
        chosen = dependency_set.select(app_dir, dependencies.configured_names())
    except Exception:  # noqa: BLE001 - a hint must not fail the error page (a bad UNSTUCK_REQUIREMENTS ...)
        chosen = None
    installed = [*(chosen.files if chosen else [])]
    for path in chosen.requirements if chosen else []:
        installed += dependency_set.includes(path)
    for path in [*installed, *(chosen.left_out if chosen else [])]:
        declared = _declared(path)
        found = next((n for n in wanted if n in declared), None)
        if found is None:
            continue
        shown = os.path.relpath(path, app_dir)
        where = declared[found]
        if path not in installed:
            return (f"{found!r} is declared in {shown}, which is not installed (the dependency set is "
                    f"{', '.join(os.path.relpath(p, app_dir) for p in chosen.files)}): declare it there, or name "
                    f"the files to install in UNSTUCK_REQUIREMENTS")
        if where.startswith("[dependency-groups]") and where != "[dependency-groups] dev":
            return (f"{found!r} is declared in {shown} {where}; unstuck installs only the dev group: "
                    f"move it to [dependency-groups] dev")
        failed = project_env.read_failure(project_env.location())
        if failed:
            return f"{found!r} is declared in {shown} but the install failed: {failed}"
        return f"{found!r} is declared in {shown} but not installed: see the install error in `unstuck status` or the log"
    name = names[0]
    if chosen is not None and chosen.lock is not None and chosen.lock.name == "poetry.lock":
        return (f"add {name!r} with `poetry add {name}` (it updates pyproject.toml and poetry.lock); unstuck "
                f"installs it in place")
    if chosen is not None and chosen.lock is not None:
        return (f"add {name!r} with `uv add {name}` (it updates pyproject.toml and uv.lock; an edit of "
                f"pyproject.toml alone needs `uv lock` too); unstuck installs it in place")
    if chosen is not None and chosen.pyproject is not None and _takes_dependencies(chosen.pyproject):
        return (f"add {name!r} to [project].dependencies in {os.path.relpath(chosen.pyproject, app_dir)} "
                f"(or `uv add {name}`); unstuck installs it in place")
    if chosen is not None and chosen.requirements:
        target = next((p for p in chosen.requirements if p.name == "requirements.txt"), chosen.requirements[0])
        return f"add {name!r} to {os.path.relpath(target, app_dir)}; unstuck installs it in place"
    folder = Path(near).parent if near and not os.path.isabs(near) else Path(".")
    return f"create {folder / 'requirements.txt'} with the line {name!r}; unstuck installs it in place"


def _declared(path: Path) -> dict[str, str]:
    """Canonical names the file declares -> where: "" (a requirements file, pyproject's
    [project].dependencies) or "[dependency-groups] NAME" (PEP 735: unstuck installs the dev group)."""
    if path.name != "pyproject.toml":
        try:
            return dict.fromkeys(_names(_requirement_lines(path.read_text(errors="replace"))), "")
        except OSError:
            return {}
    data = _toml(path)
    out: dict[str, str] = {}
    groups = data.get("dependency-groups")
    for group, items in groups.items() if isinstance(groups, dict) else []:
        out.update(dict.fromkeys(_names(items), f"[dependency-groups] {group}"))
    project = data.get("project")
    if isinstance(project, dict):
        out.update(dict.fromkeys(_names(project.get("dependencies")), ""))
    # A Poetry project's main dependencies and the groups `poetry install` installs (unstuck installs them).
    out.update(dict.fromkeys(_names(poetry.requirements(data, path.parent).lines), ""))
    return out


def _takes_dependencies(path: Path) -> bool:
    """A pyproject.toml with a [project] table whose dependencies are listed in it (not `dynamic`,
    i.e. read by the build backend from elsewhere)."""
    project = _toml(path).get("project")
    return isinstance(project, dict) and "dependencies" not in (project.get("dynamic") or [])


def _toml(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return {}


def _names(requirements) -> set[str]:
    out = set()
    for text in requirements if isinstance(requirements, list) else []:
        if isinstance(text, str):  # dependency groups may also hold {include-group = ...} tables
            try:
                out.add(canonicalize_name(Requirement(text).name))
            except InvalidRequirement:
                continue
    return out


def _requirement_lines(text: str) -> list[str]:
    # pip offers no public API to read a requirements file, and a package name is all a hint needs: each
    # logical line is a comment, an option (-r, -e, --index-url ...) or a PEP 508 requirement, which
    # packaging parses; per-requirement options (--hash=...) are cut off, anything else is skipped.
    out = []
    for line in text.replace("\\\n", " ").splitlines():
        line = re.split(r"(?:^|\s)#", line, maxsplit=1)[0].strip()
        if line and not line.startswith("-"):
            out.append(re.split(r"\s+--?\w", line, maxsplit=1)[0])
    return out
