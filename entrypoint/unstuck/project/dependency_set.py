"""Which dependency files make the project's environment: the set a person would pick, said out loud.

A repository holds more requirements files than its developers install: test fixtures pinning old
versions, docs/requirements.txt (Sphinx), vendored examples, and a production set beside the dev one.
Installing all of them in one resolution ran apps on a fixture's FastAPI 0.65.2, or failed the whole
install on uWSGI (production only) where the developers use `pip install -r requirements/local.txt`.
So (select()):

- UNSTUCK_REQUIREMENTS, when set, names the files (relative to APP_DIR); nothing else is looked at.
- Otherwise only the **project root** counts: APP_DIR when it declares anything, else the shallowest
  directory below it that does (the sample mounts its project at /workspace/app). Files deeper than the
  root are never installed (a uv workspace's members and `-r`/`-c` includes are part of the root's).
- At the root, a `uv.lock` beside pyproject.toml pins everything (`uv sync`, dev group included).
- A `poetry.lock` beside a pyproject.toml that declares [tool.poetry] dependencies: what `poetry install`
  installs (the main dependencies and the non-optional groups), at the lock's versions (see poetry.py).
- Else a dev set, when there is one (DEV_FILES, first match), is installed in preference to the
  production set; it normally includes the base (`-r base.txt`), and root requirements.txt is added
  unless the dev file includes it already or it is only the production set (`-r requirements/production.txt`).
  Without a dev set, requirements.txt (else requirements/base.txt). pyproject.toml's [project]
  dependencies, its `dev` group and its `dev` extra are installed with either.

Pure: reads files, runs nothing; dependencies.plan() turns a Selection into uv commands.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from unstuck.seams.watchfiles_seam import DefaultFilter

from unstuck.project import poetry

# The directories the watcher never looks into either (watchfiles' defaults, and `venv`): not walked.
SKIP_DIRS = set(DefaultFilter.ignore_dirs) | {"venv"}
# In order of preference: the first one present is the dev set.
DEV_FILES = ("requirements-dev.txt", "requirements_dev.txt", "dev-requirements.txt", "requirements/dev.txt",
             "requirements/development.txt", "requirements/local.txt")
PRODUCTION_NAMES = ("production", "prod")
BASE_FILES = ("requirements.txt", "requirements/base.txt")
# -r/-c lines of a requirements file: the files they name are part of what it declares.
INCLUDE_RE = re.compile(r"^\s*(?:-r|-c|--requirement|--constraint)(?:\s+|=)(\S+)", re.M)
MAX_DIRS = 5000  # walked when looking for the project root below APP_DIR


@dataclass
class Selection:
    root: Path  # the project root
    requirements: list[Path] = field(default_factory=list)  # installed with -r (uv follows their includes)
    pyproject: Path | None = None  # the root's pyproject.toml, when it declares anything
    members: list[Path] = field(default_factory=list)  # a uv workspace's members' pyproject.toml
    lock: Path | None = None
    reason: str = ""  # why this set, one line
    left_out: list[Path] = field(default_factory=list)  # dependency files found and not installed
    left_out_why: str = ""

    @property
    def files(self) -> list[Path]:
        """What is installed, in a stable order (the sources whose content is stamped)."""
        out = [*self.requirements, *([self.pyproject] if self.pyproject else []), *self.members]
        return out + ([self.lock] if self.lock else [])

    def describe(self, app_dir: Path) -> tuple[str, str | None]:
        """Two log lines: the set and why; what was left out and why (None when nothing was)."""
        rel = lambda paths: ", ".join(os.path.relpath(p, app_dir) for p in paths)  # noqa: E731
        chosen = f"dependency set: {rel(self.files)} ({self.reason})"
        left = f"left out: {rel(self.left_out)} ({self.left_out_why})" if self.left_out else None
        return chosen, left


def read_toml(path: Path) -> dict | None:
    """The parsed file; None when it cannot be read or parsed (uv then reports the error itself)."""
    try:
        return tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None


def declares(pyproject: Path) -> bool:
    """A pyproject.toml that declares something to install (not only [tool.ruff] and the like)."""
    data = read_toml(pyproject)
    return data is None or any(key in data for key in ("project", "build-system", "dependency-groups")) \
        or poetry.declares(data)


def is_requirements_name(name: str) -> bool:
    return name.endswith(".txt") and "requirements" in name


def candidates(directory: Path) -> list[Path]:
    """The dependency files a directory holds: *requirements*.txt, requirements/*.txt, pyproject.toml, uv.lock,
    poetry.lock."""
    out = []
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return []
    for name in names:
        path = directory / name
        if is_requirements_name(name) and path.is_file():
            out.append(path)
        elif name == "pyproject.toml" and path.is_file() and declares(path):
            out.append(path)
        elif name in ("uv.lock", poetry.LOCK) and (directory / "pyproject.toml").is_file():
            out.append(path)
        elif name == "requirements" and path.is_dir():
            out += sorted(p for p in path.glob("*.txt") if p.is_file())
    return out


def all_files(app_dir: Path) -> list[Path]:
    """Every dependency file under APP_DIR (outside ignored directories): what could have been chosen."""
    found: list[Path] = []
    for walked, (directory, subdirs, _) in enumerate(os.walk(app_dir)):
        subdirs[:] = sorted(d for d in subdirs if d not in SKIP_DIRS and not d.startswith(".") and d != "requirements")
        found += candidates(Path(directory))
        if walked >= MAX_DIRS:
            break
    return found


def project_root(app_dir: Path) -> Path | None:
    """APP_DIR when it declares anything, else the shallowest directory below it that does (the first
    in name order on a tie); None when nothing under APP_DIR declares anything."""
    level = [app_dir]
    seen = 0
    while level and seen < MAX_DIRS:
        for directory in level:
            if candidates(directory):
                return directory
        following = []
        for directory in level:
            try:
                subdirs = sorted(e.name for e in os.scandir(directory) if e.is_dir(follow_symlinks=False))
            except OSError:
                continue
            following += [directory / d for d in subdirs if d not in SKIP_DIRS and not d.startswith(".")]
        seen += len(level)
        level = following
    return None


def includes(path: Path, seen: set[Path] | None = None) -> list[Path]:
    """The files `path` includes with -r/-c, transitively (missing ones are uv's to report)."""
    seen = set() if seen is None else seen
    out = []
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return out
    for name in INCLUDE_RE.findall(text):
        target = (path.parent / name).resolve()
        if target not in seen:
            seen.add(target)
            out += [target, *includes(target, seen)]
    return out


def only_production(path: Path) -> bool:
    """A requirements file whose only lines include a production set (`-r requirements/production.txt`)."""
    try:
        lines = [re.split(r"(?:^|\s)#", line, maxsplit=1)[0].strip() for line in path.read_text().splitlines()]
    except OSError:
        return False
    lines = [line for line in lines if line]
    named = INCLUDE_RE.findall("\n".join(lines))
    return bool(lines) and len(named) == len(lines) and all(Path(n).stem in PRODUCTION_NAMES for n in named)


def workspace_members(pyproject: Path) -> list[Path]:
    """The pyproject.toml of each member of the uv workspace `pyproject` roots ([tool.uv.workspace])."""
    workspace = ((read_toml(pyproject) or {}).get("tool") or {}).get("uv", {}).get("workspace")
    if not isinstance(workspace, dict):
        return []
    root = pyproject.parent
    excluded = {p.resolve() for pattern in workspace.get("exclude") or [] for p in root.glob(pattern)}
    members = {p.resolve() for pattern in workspace.get("members") or [] for p in root.glob(pattern)}
    return sorted(m / "pyproject.toml" for m in members - excluded - {root} if (m / "pyproject.toml").is_file())


def explicit(app_dir: Path, names: tuple[str, ...]) -> Selection:
    """UNSTUCK_REQUIREMENTS: exactly these files (config.py checked they are relative and exist)."""
    paths = [app_dir / name for name in names]
    lock = next((p for p in paths if p.name in ("uv.lock", poetry.LOCK)), None)
    root = (lock or paths[0]).parent
    chosen = Selection(root, reason="UNSTUCK_REQUIREMENTS names them")
    if lock is not None and lock.name == poetry.LOCK:
        chosen.lock, chosen.pyproject = lock, lock.parent / "pyproject.toml"
        chosen.reason = f"UNSTUCK_REQUIREMENTS names them: {poetry_words(chosen.pyproject)} at poetry.lock's versions"
    elif lock is not None:
        chosen.lock, chosen.pyproject = lock, lock.parent / "pyproject.toml"
        chosen.members = workspace_members(chosen.pyproject)
    else:
        chosen.requirements = [p for p in paths if p.name != "pyproject.toml"]
        chosen.pyproject = next((p for p in paths if p.name == "pyproject.toml"), None)
    return chosen


def select(app_dir: Path, names: tuple[str, ...] = ()) -> Selection | None:
    """The dependency set to install (see the module docstring); None when nothing declares anything."""
    if names:
        chosen = explicit(app_dir, names)
    else:
        root = project_root(app_dir)
        if root is None:
            return None
        chosen = _at_root(root, app_dir)
    used = set(chosen.files)
    for path in chosen.requirements:
        used.update(includes(path))
    used = {u.resolve() for u in used}
    chosen.left_out = sorted((p for p in all_files(app_dir) if p.resolve() not in used),
                             key=lambda p: (len(p.parts), str(p)))
    if not chosen.left_out_why:
        chosen.left_out_why = ("not named by UNSTUCK_REQUIREMENTS" if names else
                               "not the chosen set or below the project root; set UNSTUCK_REQUIREMENTS to choose")
    return chosen


def _at_root(root: Path, app_dir: Path) -> Selection:
    where = "" if root == app_dir else f" at {os.path.relpath(root, app_dir)}/"
    pyproject = root / "pyproject.toml"
    pyproject = pyproject if pyproject.is_file() and declares(pyproject) else None
    members = workspace_members(pyproject) if pyproject else []
    if pyproject and (root / "uv.lock").is_file():
        return Selection(root, pyproject=pyproject, members=members, lock=root / "uv.lock",
                         reason=f"the project root{where} has a uv.lock, which pins the whole environment "
                                "(dev group included)",
                         left_out_why="uv.lock pins the environment (add them with `uv add`), or below the project root")
    data = (read_toml(pyproject) or {}) if pyproject else {}
    if pyproject and poetry.declares(data) and (root / poetry.LOCK).is_file():
        return Selection(root, pyproject=pyproject, lock=root / poetry.LOCK,
                         reason=f"the project root{where} has a poetry.lock: {poetry_words(pyproject)} at its "
                                "versions, as `poetry install`",
                         left_out_why="poetry.lock pins the environment (add them with `poetry add`), or below "
                                      "the project root")
    dev = next((root / name for name in DEV_FILES if (root / name).is_file()), None)
    requirements: list[Path] = []
    if dev is not None:
        requirements = [dev]
        base = root / "requirements.txt"
        if base.is_file() and base != dev and not only_production(base) and base.resolve() not in includes(dev):
            requirements.append(base)
        production = " in preference to the production set" if any(
            (root / n).is_file() for n in ("requirements/production.txt", "requirements/prod.txt",
                                           "requirements-prod.txt", "requirements-production.txt")) \
            or (base.is_file() and only_production(base)) else ""
        reason = f"the dev set{where}{production}"
    else:
        base = next((root / name for name in BASE_FILES if (root / name).is_file()), None)
        requirements = [base] if base is not None else []
        reason = f"the project root{where}'s declarations (no dev set)"
    if pyproject and poetry.declares(data):
        reason += "; pyproject.toml: its [tool.poetry] dependencies and groups, unpinned (no poetry.lock)"
    elif pyproject:
        reason += "; pyproject.toml: its dependencies, dev group and dev extra"
    return Selection(root, requirements, pyproject, members, reason=reason)


def poetry_words(pyproject: Path) -> str:
    """Which of a Poetry project's dependencies are installed: `main + dev + test` (its non-optional groups)."""
    return " + ".join(["main", *poetry.requirements(read_toml(pyproject) or {}, pyproject.parent).groups])
