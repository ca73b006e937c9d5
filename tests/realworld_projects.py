"""Three large public projects, run in the unstuck image as their developers would run them (issue 18).

Used by `make test-realworld` (tests/realworld: every answer unstuck serves compared with a fresh interpreter's,
across a scripted sequence of saves) and by `make bench BENCH_ARGS="--only realworld"` (save -> served beside the
framework's own dev server). Their code is never part of this repository: each is exported at a pinned commit
from a checkout in `REALWORLD_SRC/<name>` (a clone of the repository, any branch, holding the commit), or else
cloned from GitHub into `REALWORLD_CACHE` (default ~/.cache/unstuck-realworld).

What a developer sets for each, found by running it by hand (see `Project.why`):
- bakerydemo (Wagtail 7.4, Django 6.0, SQLite): its `.python-version` says 3.12, the image runs 3.13 (the copy says
  3.13); the Procfile's `release` migrates; `manage.py load_initial_data` loads the demo content.
- healthchecks (Django 6.1, 45 INSTALLED_APPS, SQLite): `UNSTUCK_REQUIREMENTS=requirements.txt` (its dev set has
  mysqlclient, which needs MySQL's headers); `manage.py migrate`; its ALLOWED_HOSTS is `localhost`.
- mealie (FastAPI, SQLAlchemy, pydantic; 367 modules; SQLite): `APP_MODULE=mealie.app:app` (nothing discovery looks
  for), `PRODUCTION=false` (data in dev/data, the dev log config); its pins are poetry.lock's, dev group included
  (unstuck reads no poetry.lock: exported to requirements-dev.txt, as a developer would `poetry export`); Python 3.11
  (those 2024 pins have no 3.13 wheels); python-ldap builds against libldap2-dev and libsasl2-dev. (The production
  log config opens a log file at import, which keeps the app layer away: "an import left a file or socket open".)
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path

MARK = "# --- unstuck realworld edit ---"
HOST = "localhost"  # healthchecks only allows its SITE_ROOT's host; the same header for every project and the oracle
HEADERS = {"host": HOST, "accept": "application/json"}  # unstuck's 503 page as data (see answer())


def mealie_pins(tree: Path) -> None:
    """poetry.lock's pins as requirements-dev.txt: what `poetry export` would give a developer."""
    lock = tomllib.loads((tree / "poetry.lock").read_text())
    pins = "\n".join(f"{p['name']}=={p['version']}" for p in lock["package"])
    (tree / "requirements-dev.txt").write_text(f"# poetry.lock's pins (unstuck reads no poetry.lock)\n{pins}\n")


def python_313(tree: Path) -> None:
    (tree / ".python-version").write_text("3.13\n")


@dataclass(frozen=True)
class Project:
    name: str
    repo: str  # OWNER/NAME on GitHub
    commit: str
    why: str  # why this project, and what it stands for
    base: str  # BASE_IMAGE
    build_packages: str | None  # UNSTUCK_BUILD_PACKAGES (None: the image's default)
    env: dict
    urls: tuple[str, ...]  # compared after every step
    leaf: str  # a view's module (relative path)
    leaf_kind: str  # "django-view:<function>" or "fastapi-router"
    leaf_url: str  # where the leaf edit's text shows
    central: str  # a module most others import
    setup: tuple[tuple[str, ...], ...] = ()  # run in the container once it serves (as the app's user, in /workspace)
    prepare: object = None  # callable(tree): files a developer adds to the checkout
    paths: tuple[str, ...] = ()  # what to export from the repository (empty: everything)
    framework_server: tuple[str, ...] = ()  # the framework's own dev server, in the same image and environment
    release: bool = False  # the Procfile's release must have run before `setup`
    first_start_s: float = 600.0
    step_s: float = 180.0

    @property
    def leaf_package(self) -> str:
        return str(Path(self.leaf).parent).replace("/", ".")

    @property
    def central_module(self) -> str:
        return self.central.removesuffix(".py").replace("/", ".")


PROJECTS = {
    "bakerydemo": Project(
        name="bakerydemo", repo="wagtail/bakerydemo", commit="8e2b625755d8942412d5b7627b146a795933b8b2",
        why="a Wagtail site: the issue's original bug (Wagtail hooks, Django's app registry)",
        base="unstuck-local-base:trixie", build_packages=None, env={},
        urls=("/", "/breads/", "/search/?q=bread"),
        leaf="bakerydemo/search/views.py", leaf_kind="django-view:search", leaf_url="/search/?q=bread",
        central="bakerydemo/base/models.py",
        setup=(("python", "manage.py", "load_initial_data"),), release=True, prepare=python_313,
        framework_server=("python", "manage.py", "runserver", "0.0.0.0:8000")),
    "healthchecks": Project(
        name="healthchecks", repo="healthchecks/healthchecks", commit="29b5ec251059034b79e0120e2ff0c3e35d7bd9f8",
        why="a Django project with many INSTALLED_APPS (45, one per integration) on SQLite",
        base="unstuck-local-base:trixie", build_packages=None, env={"UNSTUCK_REQUIREMENTS": "requirements.txt"},
        urls=("/accounts/login/", "/docs/", "/docs/cron/", "/api/v3/status/"),
        leaf="hc/front/views.py", leaf_kind="django-view:serve_doc", leaf_url="/docs/",
        central="hc/api/models.py",
        setup=(("python", "manage.py", "migrate"),),
        framework_server=("python", "manage.py", "runserver", "0.0.0.0:8000")),
    "mealie": Project(
        name="mealie", repo="mealie-recipes/mealie", commit="b5643a9399465d8b4ea339e7a6639df2d697741b",
        why="a large FastAPI/SQLAlchemy/pydantic service: 367 modules, a router per feature",
        base="unstuck-local-base:bookworm", build_packages="gcc libc6-dev libpq-dev libldap2-dev libsasl2-dev",
        env={"APP_MODULE": "mealie.app:app", "PRODUCTION": "false"},
        urls=("/api/app/about", "/api/app/about/theme", "/api/app/about/realworld-leaf", "/openapi.json"),
        leaf="mealie/routes/app/app_about.py", leaf_kind="fastapi-router", leaf_url="/api/app/about/realworld-leaf",
        central="mealie/db/models/_model_base.py",
        prepare=mealie_pins, paths=("mealie", "alembic", "alembic.ini", "pyproject.toml", "poetry.lock", "dev"),
        framework_server=("uvicorn", "mealie.app:app", "--reload", "--host", "0.0.0.0", "--port", "8000")),
}


# -- the checkouts --------------------------------------------------------------------------------------------


class SourceMissing(Exception):
    pass


def checkout(project: Project) -> Path:
    """A git checkout holding the pinned commit: REALWORLD_SRC/<name>, else a clone in REALWORLD_CACHE."""
    src = os.environ.get("REALWORLD_SRC")
    if src:
        where = Path(src) / project.name
        if not (where / ".git").exists() and not (where / "HEAD").exists():
            raise SourceMissing(f"REALWORLD_SRC={src}: no git checkout at {where} (clone https://github.com/"
                                f"{project.repo} there, or unset REALWORLD_SRC to clone it into the cache)")
    else:
        where = Path(os.environ.get("REALWORLD_CACHE", Path.home() / ".cache" / "unstuck-realworld")) / project.name
        if not where.exists():
            where.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run(["git", "clone", "--quiet", "--no-checkout", f"https://github.com/{project.repo}",
                            str(where)], check=True)
    has = subprocess.run(["git", "-C", str(where), "cat-file", "-e", f"{project.commit}^{{commit}}"],
                         capture_output=True)
    if has.returncode:
        raise SourceMissing(f"{where} does not hold {project.repo} commit {project.commit}: fetch it "
                            f"(git -C {where} fetch origin {project.commit})")
    return where


def export(project: Project, dest: Path) -> Path:
    """The pinned commit's files (only `paths`, when given) in `dest`, prepared as a developer would, every file
    readable and writable by the container's user (the apps write their SQLite files and media beside the code)."""
    dest.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(checkout(project)), "archive", project.commit, *project.paths],
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "x", "-C", str(dest)], input=archive, check=True)
    if project.prepare:
        project.prepare(dest)
    for path in [dest, *dest.rglob("*")]:
        if not path.is_symlink():
            path.chmod(0o777 if path.is_dir() else 0o666)
    for parent in dest.parents:  # temp dirs are 0700: the container's user must reach the tree
        if parent == Path("/") or parent == Path("/tmp"):
            break
        parent.chmod(parent.stat().st_mode | 0o005)
    return dest


def copy_tree(src: Path, dest: Path) -> Path:
    """A copy of a prepared tree (its database and media included), for a second server."""
    shutil.copytree(src, dest, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    for path in [dest, *dest.rglob("*")]:
        if not path.is_symlink():
            path.chmod(0o777 if path.is_dir() else 0o666)
    return dest


# -- the edits ------------------------------------------------------------------------------------------------


def leaf_block(project: Project, label: str, added: str | None = None, missing: bool = False,
               syntax_error: bool = False) -> str:
    """What the leaf edit appends to the view's module: a marker in its answer, made of `label`, the central
    module's REALWORLD_CENTRAL (so a central edit shows) and an added module's TEXT."""
    lines = [MARK, f"import {project.central_module} as _rw_central"]
    if missing:
        lines.append(f"from {project.leaf_package}.realworld_missing import nothing  # noqa")
    text = f"{label!r} + ' | ' + getattr(_rw_central, 'REALWORLD_CENTRAL', '-')"
    if added:
        lines.append(f"from {project.leaf_package} import {added}")
        text += f" + ' | ' + {added}.TEXT"
    if project.leaf_kind.startswith("django-view:"):
        view = project.leaf_kind.split(":", 1)[1]
        lines += [f"_rw_view = {view}", "", "",
                  f"def {view}(request, *args, **kwargs):",
                  "    response = _rw_view(request, *args, **kwargs)",
                  f"    response.content = response.content + ('<!-- ' + {text} + ' -->').encode()",
                  "    return response"]
    else:
        lines += ["", "", '@router.get("/realworld-leaf")', "def realworld_leaf():",
                  f"    return {{'leaf': {text}}}"]
    if syntax_error:
        lines.append("def broken(:")
    return "\n".join(lines) + "\n"


def with_block(original: str, block: str) -> str:
    return original.rstrip("\n") + "\n\n\n" + block


def central_block(label: str) -> str:
    return f"{MARK}\nREALWORLD_CENTRAL = {label!r}\n"


# -- comparing answers ----------------------------------------------------------------------------------------

NORMALISE = [
    (re.compile(r'(name="csrfmiddlewaretoken" value=")[^"]+'), r"\1CSRF"),
    (re.compile(r'("csrfToken"|csrf_token|csrfmiddlewaretoken)([=:"\s]+)[A-Za-z0-9]{32,}'), r"\1\2CSRF"),
    (re.compile(r"\b\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?([+-]\d\d:?\d\d|Z)?"), "TIMESTAMP"),
    (re.compile(r"\b[0-9a-f]{32,64}\b"), "HEX"),
]


def normalise(body: str) -> str:
    body = sorted_tags(body)
    for pattern, replacement in NORMALISE:
        body = pattern.sub(replacement, body)
    return body


def sorted_tags(body: str) -> str:
    """A JSON body with each `tags` list sorted. FastAPI merges the tags of nested routers in an order that follows
    string hashes: two fresh interpreters (each its own PYTHONHASHSEED) give mealie's /openapi.json different orders
    (`["Recipe: CRUD", "Recipe: Images and Assets"]` and the reverse), while forks share their parent's."""
    if not body.startswith(("{", "[")):
        return body
    try:
        data = json.loads(body)
    except ValueError:
        return body

    def walk(node):
        if isinstance(node, dict):
            return {k: sorted(v) if k == "tags" and isinstance(v, list) and all(isinstance(t, str) for t in v)
                    else walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(item) for item in node]
        return node

    return json.dumps(walk(data), separators=(",", ":"), ensure_ascii=False)


