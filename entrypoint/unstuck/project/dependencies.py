"""Install what the project declares into the project environment, at start and whenever it changes.

Adding a package otherwise means rebuilding the image. uv does the work (it resolves everything before it
touches the environment, so a failed install leaves the last good one serving); this decides how to
install the set dependency_set.select() chose, streams uv's output into the log, remembers what was
installed (by content hash, in the project environment, so a second start installs nothing), and reports
the Outcome to the reloader.

How (plan()), in two steps:
1. The dependencies. With a `uv.lock`: `uv sync --locked --no-install-project` (exactly the locked
   versions, dev group included; the sync is exact, so files outside the lock are not installed: the next
   sync would remove them). `--locked` rather than `--frozen`: a pyproject.toml edited without `uv lock`
   is reported ("run uv lock") instead of silently serving without the new dependency. Without a lock,
   one `uv pip install` (one resolution, so the files cannot contradict each other) of the chosen
   requirements files and pyproject.toml's [project] dependencies, `dev` extra and `dev` group (PEP 735).
   A Poetry project: `uv pip install` of what `poetry install` installs (poetry.py writes its
   [tool.poetry] declarations as a requirements file into the environment), with poetry.lock's versions
   as `--constraint`s.
2. The project itself, editable, when it is a package ([build-system], or tool.uv.package = true), so
   edits to it keep reloading without a reinstall: a separate step, because a project that installs with
   `pip install -r requirements.txt` often has a [build-system] that does not build in place (a forced
   include of generated files): its dependencies are installed all the same, its source stays importable
   from APP_DIR, and the log says how to say "not a package" (`[tool.uv] package = false`).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import threading
import time
from dataclasses import dataclass, field, replace
from fnmatch import fnmatch
from pathlib import Path

from unstuck.project import dependency_set, poetry, project_env, uv_errors
from unstuck.project.dependency_set import read_toml as read_pyproject
from unstuck.logs import log

REQUIREMENTS = "*requirements*.txt"
# A change to one of these re-checks what needs installing (.python-version: the Python check).
FILES = (REQUIREMENTS, "pyproject.toml", "uv.lock", poetry.LOCK, ".python-version")
# The parts of a pyproject.toml that change what is installed; edits elsewhere ([tool.ruff] ...) do not.
PYPROJECT_KEYS = ("project", "dependency-groups", "build-system")
COMMON_ARGS = ("--no-progress",)
# A Poetry project's declarations and pins, as files uv reads, written into the project environment.
POETRY_REQUIREMENTS = "unstuck-poetry-requirements.txt"
POETRY_CONSTRAINTS = "unstuck-poetry-constraints.txt"
NOT_A_PACKAGE = "add `[tool.uv]` `package = false` to pyproject.toml if it is not meant to be installed as a package"


@dataclass
class Outcome:
    ok: bool
    files: list[str]
    seconds: float
    error: str = ""  # the installer's error lines
    summary: str = ""  # one line: what failed (or what was done)
    had_env: bool = True  # an earlier install was in place (and keeps serving when this one failed)
    warning: str = ""  # the dependencies are in, but the project itself is not (why, and what to do)


@dataclass
class Plan:
    """The uv commands that install the chosen set: its dependencies, then the project itself."""

    args: list[str]  # after `uv`: the dependencies
    cwd: Path
    sources: list[Path]  # stamped once the dependencies are in
    project_args: list[str] | None = None  # the project's own editable install, after `args`
    project: Path | None = None  # the package `project_args` installs
    selection: dependency_set.Selection | None = None
    generated: dict[Path, str] = field(default_factory=dict)  # files written before uv runs (path: text)
    notes: list[str] = field(default_factory=list)  # logged before the install (a poetry.lock out of date)

    @property
    def ignored(self) -> list[Path]:
        return self.selection.left_out if self.selection else []


def is_dependency_file(path: str) -> bool:
    p = Path(path)
    return any(fnmatch(p.name, pattern) for pattern in FILES) or (p.parent.name == "requirements" and p.suffix == ".txt")


def is_package(pyproject: dict) -> bool:
    """uv's rule: a [build-system] makes the project installable unless tool.uv.package says otherwise."""
    explicit = pyproject.get("tool", {}).get("uv", {}).get("package")
    if isinstance(explicit, bool):
        return explicit
    return poetry.is_package(pyproject) is not False and "build-system" in pyproject  # poetry's package-mode


def pyproject_args(path: Path) -> tuple[list[str], Path | None]:
    """`uv pip install` arguments for one pyproject.toml's dependencies, and its directory when the project
    itself is a package (installed in the separate step)."""
    data = read_pyproject(path)
    if data is None:
        return ["-r", str(path)], None  # broken: let uv say what is wrong with it
    project = data.get("project")
    project = project if isinstance(project, dict) else {}
    dynamic = project.get("dynamic") or []
    args: list[str] = []
    # Dynamic dependencies need a build to be known: the package step (which builds) installs them.
    if project.get("dependencies") and "dependencies" not in dynamic:
        args += ["-r", str(path)]
        if "dev" in (project.get("optional-dependencies") or {}) and "optional-dependencies" not in dynamic:
            args += ["--extra", "dev"]
    if "dev" in (data.get("dependency-groups") or {}):
        args += ["--group", f"{path}:dev"]
    return args, (path.parent if is_package(data) else None)


def configured_names(environ=None) -> tuple[str, ...]:
    """UNSTUCK_REQUIREMENTS (validated by config.load at start)."""
    from unstuck.config import requirement_names

    return requirement_names((os.environ if environ is None else environ).get("UNSTUCK_REQUIREMENTS", ""))


def plan(root: Path, env: Path, names: tuple[str, ...] | None = None) -> Plan | None:
    """How to install the set the project under `root` declares; None when it declares nothing."""
    chosen = dependency_set.select(root, configured_names() if names is None else names)
    if chosen is None or not chosen.files:
        return None
    python = ["--python", str(project_env.python(env))]
    if chosen.lock is not None and chosen.lock.name == "uv.lock":
        project_dir = chosen.lock.parent
        data = read_pyproject(project_dir / "pyproject.toml") or {}
        sync = ["sync", "--locked", *COMMON_ARGS, "--project", str(project_dir), *python]
        packaged = is_package(data) or bool(chosen.members)
        skip = "--no-install-workspace" if chosen.members else "--no-install-project"
        return Plan([*sync, skip] if packaged else sync, project_dir, chosen.files,
                    sync if packaged else None, project_dir if packaged else None, chosen)
    args: list[str] = []
    packages: list[Path] = []
    generated: dict[Path, str] = {}
    notes: list[str] = []
    for path in chosen.requirements:
        args += ["-r", str(path)]
    for path in [p for p in [chosen.pyproject, *chosen.members] if p is not None]:
        data = read_pyproject(path)
        if data is not None and poetry.declares(data):
            more, package = poetry_args(path, data, chosen.lock, env, generated, notes)
        else:
            more, package = pyproject_args(path)
        args += more
        packages += [package] if package else []
    install = ["pip", "install", *COMMON_ARGS, *python]
    # The package step resolves the dependencies again with it (one resolution: consistent versions).
    project_args = [*install, *args, *[a for p in packages for a in ("-e", str(p))]] if packages else None
    if not args:  # only the package itself declares anything (dynamic dependencies), or nothing does
        return Plan(project_args, root, chosen.files, None, None, chosen, generated, notes) if project_args else None
    return Plan([*install, *args], root, chosen.files, project_args, packages[0] if packages else None, chosen,
                generated, notes)


def poetry_args(path: Path, data: dict, lock: Path | None, env: Path, generated: dict[Path, str],
                notes: list[str]) -> tuple[list[str], Path | None]:
    """`uv pip install` arguments for a Poetry project (what `poetry install` installs, at poetry.lock's
    versions when there is one), and its directory when it is a package; the files they name are added
    to `generated`, a lock out of date to `notes`."""
    wanted = poetry.requirements(data, path.parent)
    project = data.get("project") if isinstance(data.get("project"), dict) else {}
    args: list[str] = []
    direct = list(wanted.lines)
    if project.get("dependencies") and "dependencies" not in (project.get("dynamic") or []):
        args += ["-r", str(path)]
        direct += [d for d in project["dependencies"] if isinstance(d, str)]
    if wanted.lines:
        generated[env / POETRY_REQUIREMENTS] = "".join(f"{line}\n" for line in wanted.lines)
        args += ["-r", str(env / POETRY_REQUIREMENTS)]
    for group in wanted.dependency_groups:
        args += ["--group", f"{path}:{group}"]
        direct += [d for d in data["dependency-groups"][group] if isinstance(d, str)]
    locked = read_pyproject(lock) if lock is not None and lock.name == poetry.LOCK else None
    if locked is not None:
        pins, unpinned = poetry.constraints(locked, direct)
        if not poetry.is_fresh(data, locked):
            notes.append(f"{lock.name} is out of date with {path.name} (its content-hash differs; run `poetry lock`): "
                         f"installing at the locked versions where they still fit"
                         + (f"; not pinned: {', '.join(unpinned)}" if unpinned else ""))
        generated[env / POETRY_CONSTRAINTS] = "".join(f"{line}\n" for line in pins)
        args += ["--constraint", str(env / POETRY_CONSTRAINTS)]
    return args, (path.parent if is_package(data) else None)


def _requirements_digest(path: Path, seen: set[Path]) -> bytes:
    if path in seen:
        return b""
    seen.add(path)
    text = path.read_bytes()
    included = b""
    for name in dependency_set.INCLUDE_RE.findall(text.decode(errors="replace")):
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
            if poetry.tool(data):  # (only then: other projects' digests, and so their stamps, stay as they were)
                relevant["tool.poetry"] = {key: poetry.tool(data).get(key) for key in poetry.DIGEST_KEYS}
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
    from unstuck.project.python_requirement import preflight as check

    return check(root)


def pending(root: Path, env: Path | None = None) -> list[Path]:
    """The sources whose current content the project environment has not got yet (all of them when it is
    missing or was made for another interpreter); none while this Python does not fit the project."""
    return check(root, env)[0]


def check(root: Path, env: Path | None = None) -> tuple[list[Path], dict | None]:
    """pending(), and the chosen set in words ({"chosen": line, "left_out": line or None}) for the status."""
    env = env or project_env.location()
    if preflight(root):
        return [], None
    the_plan = plan(root, env)
    if the_plan is None:
        return [], None
    chosen, left_out = the_plan.selection.describe(root)
    described = {"chosen": chosen, "left_out": left_out}
    stamps = project_env.read_stamps(env)
    if project_env.made_for(env) != project_env.current_interpreter() or stamps.get("interpreter") != \
            project_env.current_interpreter():
        return the_plan.sources, described
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
    return out, described


def error_lines(lines: list[str]) -> list[str]:
    return uv_errors.error_lines(lines)


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
    """Install the set the project under `root` declares into the project environment, now.

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
                                                       f"dependencies, uv.lock or poetry.lock under {root}")
    names = names or [_stamp_key(p, root) for p in the_plan.sources]
    stamps = project_env.read_stamps(env)
    had_env = bool(stamps.get("sources")) and stamps.get("interpreter") == project_env.current_interpreter() \
        and project_env.made_for(env) == project_env.current_interpreter()
    chosen, left_out = the_plan.selection.describe(root)
    base = Outcome(False, names, 0.0, had_env=had_env)
    try:
        project_env.ensure(env)
    except project_env.EnvError as exc:
        return _with(base, started, error=str(exc), summary=str(exc))
    log.info("%s", chosen)
    if left_out:
        log.info("%s", left_out)
    for note in the_plan.notes:
        log.warning("%s", note)
    for path, text in the_plan.generated.items():
        path.write_text(text)
    log.info("installing dependencies from %s into %s ...", ", ".join(names), env)
    # Hashed before uv runs: a file saved meanwhile is installed by the next round, not stamped unseen.
    hashes = {_stamp_key(p, root): digest(p) for p in the_plan.sources if p.exists()}
    compile_args = ["--compile-bytecode"] if compile_now else []
    code, lines = run_uv([*the_plan.args, *compile_args], the_plan.cwd, env)
    if code != 0:
        summary = uv_errors.summary(lines, f"uv {' '.join(the_plan.args[:2])} failed (exit code {code})")
        project_env.write_failure(env, summary)
        return _with(base, started, error="\n".join(error_lines(lines)), summary=summary)
    project_error = ""
    if the_plan.project_args:
        project_error = _install_project(the_plan, env, compile_args)
    project_env.write_stamps(env, {"interpreter": project_env.current_interpreter(), "sources": hashes})
    project_env.write_failure(env, project_error or None)
    if not compile_now:
        project_env.compile_in_background(env)
    shadowed = project_env.shadowed(env)
    if shadowed:
        log.warning("the app imports unstuck's runtime copy of %s: the project's version is not used",
                    ", ".join(shadowed))
    seconds = time.monotonic() - started
    summary = f"installed from {', '.join(names)} in {seconds:.1f} s"
    return _with(base, started, ok=True, summary=summary, warning=project_error)


def _install_project(the_plan: Plan, env: Path, compile_args: list[str]) -> str:
    """The project's own editable install, after its dependencies: "" when it is in, else one line saying
    why not and how to say it is not a package (its dependencies stay installed either way)."""
    where = the_plan.project or the_plan.cwd
    log.info("installing the project itself (%s, editable) ...", where)
    code, lines = run_uv([*the_plan.project_args, *compile_args], the_plan.cwd, env)
    if code == 0:
        return ""
    why = uv_errors.summary(lines, f"exit code {code}")
    message = (f"the project itself ({where}) is not installed as a package: {why}; its dependencies are "
               f"installed and its source is imported from APP_DIR; {NOT_A_PACKAGE}")
    log.warning("%s", message)
    return message


def _with(outcome: Outcome, started: float, **changes) -> Outcome:
    return replace(outcome, seconds=time.monotonic() - started, **changes)


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
