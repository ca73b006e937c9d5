"""Install what the project declares into the project environment, at start and whenever it changes.

Adding a package otherwise means rebuilding the image. uv does the work (it resolves everything before it
touches the environment, so a failed install leaves the last good one serving); this decides what to
install and how, streams uv's output into the log, remembers what was installed (by content hash, in the
project environment, so a second start installs nothing), and reports the Outcome to the reloader.

What is installed (plan()), from the files found under APP_DIR outside ignored directories:
- a `uv.lock` (beside its pyproject.toml; the shallowest if there are several) pins the whole
  environment: `uv sync --locked` installs exactly the locked versions, the dev group included, and the
  project itself (editable) when it is a package. The sync is exact (packages not in the lock are
  removed), so requirements*.txt files are not installed then: they would be removed by the next sync.
  `--locked` rather than `--frozen`: the same locked versions, but a pyproject.toml edited without
  `uv lock` is reported ("run uv lock") instead of silently serving without the new dependency.
- otherwise, in one `uv pip install` (one resolution, so the sources cannot contradict each other):
  every requirements*.txt; each pyproject.toml's [project] dependencies, or the project itself as an
  editable install when it is a package ([build-system], or tool.uv.package = true), so edits to it keep
  reloading without a reinstall; and its [dependency-groups] dev group (PEP 735).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import threading
import time
import tomllib
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path

from watchfiles import DefaultFilter

from unstuck import project_env
from unstuck.logs import log

REQUIREMENTS = "requirements*.txt"
# A change to one of these re-checks what needs installing (.python-version: the Python check).
FILES = (REQUIREMENTS, "pyproject.toml", "uv.lock", ".python-version")
# The directories the watcher never looks into either (watchfiles' defaults, and `venv`): not walked.
SKIP_DIRS = set(DefaultFilter.ignore_dirs) | {"venv"}
# The parts of a pyproject.toml that change what is installed; edits elsewhere ([tool.ruff] ...) do not.
PYPROJECT_KEYS = ("project", "dependency-groups", "build-system")
# -r/-c lines of a requirements file: the files they name are part of what it declares.
_INCLUDE_RE = re.compile(r"^\s*(?:-r|-c|--requirement|--constraint)(?:\s+|=)(\S+)", re.M)
ERROR_LINES = 12
COMMON_ARGS = ("--no-progress",)


@dataclass
class Outcome:
    ok: bool
    files: list[str]
    seconds: float
    error: str = ""  # the installer's error lines
    summary: str = ""  # one line: what failed (or what was done)


@dataclass
class Plan:
    """One uv command that installs everything the project declares."""

    args: list[str]  # after `uv`
    cwd: Path
    sources: list[Path]  # stamped once the command succeeds
    ignored: list[Path] = field(default_factory=list)  # found, but not installed (and why, in `note`)
    note: str = ""


def is_dependency_file(path: str) -> bool:
    return any(fnmatch(Path(path).name, pattern) for pattern in FILES)


def find(root: Path) -> list[Path]:
    found = []
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = [d for d in subdirs if d not in SKIP_DIRS]
        found += [Path(directory, name) for name in files if is_dependency_file(name)]
    return sorted(found)


def read_pyproject(path: Path) -> dict | None:
    """The parsed file; None when it cannot be read or parsed (uv then reports the error itself)."""
    try:
        return tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None


def is_package(pyproject: dict) -> bool:
    """uv's rule: a [build-system] makes the project installable unless tool.uv.package says otherwise."""
    explicit = pyproject.get("tool", {}).get("uv", {}).get("package")
    return explicit if isinstance(explicit, bool) else "build-system" in pyproject


def pyproject_args(path: Path) -> list[str]:
    """`uv pip install` arguments for one pyproject.toml (none when it declares nothing to install)."""
    data = read_pyproject(path)
    if data is None:
        return ["-r", str(path)]  # broken: let uv say what is wrong with it
    project = data.get("project")
    if not isinstance(project, dict) and not is_package(data):
        return []  # only tool settings (ruff, pytest ...)
    args = ["-e", str(path.parent)] if is_package(data) else (["-r", str(path)] if project.get("dependencies") else [])
    if "dev" in (data.get("dependency-groups") or {}):
        args += ["--group", f"{path}:dev"]
    return args


def plan(root: Path, env: Path) -> Plan | None:
    """What to run to install everything the project under `root` declares; None when it declares nothing."""
    files = [p for p in find(root) if p.name != ".python-version"]
    locks = sorted((p for p in files if p.name == "uv.lock" and (p.parent / "pyproject.toml").is_file()),
                   key=lambda p: (len(p.parts), str(p)))
    if locks:
        project_dir = locks[0].parent
        sources = [p for p in files if p == locks[0] or (p.name == "pyproject.toml" and p.is_relative_to(project_dir))]
        ignored = [p for p in files if p not in sources]
        note = (f"{os.path.relpath(locks[0], root)} pins the environment: not installing "
                f"{', '.join(os.path.relpath(p, root) for p in ignored)} (add them to pyproject.toml with `uv add`)"
                if ignored else "")
        args = ["sync", "--locked", *COMMON_ARGS, "--project", str(project_dir),
                "--python", str(project_env.python(env))]
        return Plan(args, project_dir, sources, ignored, note)
    args, sources = [], []
    for path in files:
        more = ["-r", str(path)] if fnmatch(path.name, REQUIREMENTS) else pyproject_args(path)
        if more:
            args += more
            sources.append(path)
    if not sources:
        return None
    return Plan(["pip", "install", *COMMON_ARGS, "--python", str(project_env.python(env)), *args], root, sources)


def _requirements_digest(path: Path, seen: set[Path]) -> bytes:
    if path in seen:
        return b""
    seen.add(path)
    text = path.read_bytes()
    included = b""
    for name in _INCLUDE_RE.findall(text.decode(errors="replace")):
        try:
            included += _requirements_digest((path.parent / name).resolve(), seen)
        except OSError:
            continue  # uv reports a missing file
    return text + included


def digest(path: Path) -> str:
    """Content hash of what `path` declares: for pyproject.toml only the tables that change an install."""
    if path.name == "pyproject.toml":
        data = read_pyproject(path)
        if data is not None:
            relevant = {key: data.get(key) for key in PYPROJECT_KEYS}
            relevant["tool.uv"] = data.get("tool", {}).get("uv")
            return hashlib.sha256(json.dumps(relevant, sort_keys=True, default=str).encode()).hexdigest()
        return hashlib.sha256(path.read_bytes()).hexdigest()
    if fnmatch(path.name, REQUIREMENTS):
        return hashlib.sha256(_requirements_digest(path.resolve(), set())).hexdigest()
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _stamp_key(path: Path, root: Path) -> str:
    return os.path.relpath(path, root)


def preflight(root: Path) -> str | None:
    # packaging is imported on first use: the reload server's start (before supervisord's startsecs) is not
    # delayed by it.
    from unstuck.python_requirement import preflight as check

    return check(root)


def pending(root: Path, env: Path | None = None) -> list[Path]:
    """The sources whose current content the project environment has not got yet (all of them when it is
    missing or was made for another interpreter); none while this Python does not fit the project."""
    env = env or project_env.location()
    if preflight(root):
        return []
    the_plan = plan(root, env)
    if the_plan is None:
        return []
    stamps = project_env.read_stamps(env)
    if project_env.made_for(env) != project_env.current_interpreter() or stamps.get("interpreter") != \
            project_env.current_interpreter():
        return the_plan.sources
    installed = stamps.get("sources") or {}
    out = []
    for path in the_plan.sources:
        try:
            if installed.get(_stamp_key(path, root)) != digest(path):
                out.append(path)
        except OSError:
            continue
    if not out:
        log.debug("dependencies up to date (%s)", ", ".join(_stamp_key(p, root) for p in the_plan.sources))
    return out


def error_lines(lines: list[str]) -> list[str]:
    """uv's error and its explanation (from the first `error:` or `×` line on), else the last lines."""
    start = next((i for i, line in enumerate(lines) if line.lstrip().startswith(("error:", "×"))), None)
    return (lines[start:] if start is not None else lines[-3:])[:ERROR_LINES]


def run_uv(args: list[str], cwd: Path, env: Path) -> tuple[int, list[str]]:
    """Run uv, each output line into the log as `uv: ...`; (exit code, the lines)."""
    proc = subprocess.Popen([project_env.uv_command(), *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, cwd=str(cwd), env=project_env.uv_environment(env))
    lines: list[str] = []
    for line in proc.stdout:
        line = line.rstrip()
        if line:
            log.info("uv: %s", line)
            lines = (lines + [line])[-200:]
    return proc.wait(), lines


def install_now(root: Path, names: list[str] | None = None, env: Path | None = None,
                compile_now: bool = False) -> Outcome:
    """Install everything the project under `root` declares into the project environment, now.

    The image runs with PYTHONDONTWRITEBYTECODE, so the installed modules' bytecode must be compiled by the
    install, or every interpreter start compiles them again. Compiling takes most of an install's time
    (4-5 s of 6 for a FastAPI + SQLAlchemy stack on 2 cores): in place it is done after the Outcome, in the
    background, so that the app restarts with the new packages at once; `compile_now` (the image build)
    has uv compile it before returning."""
    env = env or project_env.location()
    started = time.monotonic()
    problem = preflight(root)
    if problem:
        return Outcome(False, names or [], 0.0, problem, problem)
    the_plan = plan(root, env)
    if the_plan is None:
        return Outcome(True, names or [], 0.0, summary=f"nothing to install: no requirements*.txt, pyproject.toml "
                                                       f"dependencies or uv.lock under {root}")
    names = names or [_stamp_key(p, root) for p in the_plan.sources]
    try:
        project_env.ensure(env)
    except project_env.EnvError as exc:
        return Outcome(False, names, time.monotonic() - started, str(exc), str(exc))
    if the_plan.note:
        log.info("%s", the_plan.note)
    log.info("installing dependencies from %s into %s ...", ", ".join(names), env)
    # Hashed before uv runs: a file saved meanwhile is installed by the next round, not stamped unseen.
    hashes = {_stamp_key(p, root): digest(p) for p in the_plan.sources if p.exists()}
    args = [*the_plan.args, "--compile-bytecode"] if compile_now else the_plan.args
    code, lines = run_uv(args, the_plan.cwd, env)
    seconds = time.monotonic() - started
    if code != 0:
        summary = f"uv {' '.join(the_plan.args[:2])} failed (exit code {code})"
        return Outcome(False, names, seconds, "\n".join(error_lines(lines)), summary)
    project_env.write_stamps(env, {"interpreter": project_env.current_interpreter(), "sources": hashes})
    if not compile_now:
        project_env.compile_in_background(env)
    shadowed = project_env.shadowed(env)
    if shadowed:
        log.warning("the app imports unstuck's runtime copy of %s: the project's version is not used",
                    ", ".join(shadowed))
    return Outcome(True, names, seconds, summary=f"installed from {', '.join(names)} in {seconds:.1f} s")


def install(paths: list[Path], root: Path, on_done) -> threading.Thread:
    """install_now in a thread (the changed `paths` name it in the log); on_done(Outcome) when finished."""

    def run() -> None:
        names = [_stamp_key(p, root) for p in paths]
        try:
            outcome = install_now(root, names)
        except Exception as exc:  # noqa: BLE001 - the reloader must hear back, whatever went wrong
            outcome = Outcome(False, names, 0.0, f"{type(exc).__name__}: {exc}", "the install could not run")
        on_done(outcome)

    thread = threading.Thread(target=run, daemon=True, name="install")
    thread.start()
    return thread
