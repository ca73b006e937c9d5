"""A Poetry project as `poetry install` sees it, without Poetry: its requirements and its lock's pins.

Poetry keeps its declarations in pyproject.toml's [tool.poetry] (`^`/`~` constraints, tables with extras,
markers, git and path sources) and its versions in poetry.lock. Installed from pyproject.toml's metadata
alone, a 2024 project got today's packages (openai 2.x: `cannot import name 'ChatCompletion'`) and no dev
group. So this writes what `poetry install` installs, in forms uv reads:

- requirements(): PEP 508 lines for the main dependencies ([tool.poetry.dependencies], or [project]'s
  when poetry 2 keeps them there: those are installed with `-r pyproject.toml`) and every group that is
  not optional ([tool.poetry.group.<name>], the older [tool.poetry.dev-dependencies]); `[dependency-groups]`
  names are returned apart (uv reads them itself with `--group`).
- constraints(): `name==version` for each package in poetry.lock (lock format 1.x and 2.x): given to uv
  as constraints, so the locked versions win and what the lock lists for other platforms is installed
  only if something here needs it.
- is_fresh(): poetry's content-hash check; a lock that is out of date still installs (with one log line).

Pure: dicts and text in, text out.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

LOCK = "poetry.lock"
# The [tool.poetry] keys poetry's content-hash covers (poetry.packages.locker: the legacy keys, then group).
LEGACY_KEYS = ("dependencies", "source", "extras", "dev-dependencies")
RELEVANT_KEYS = (*LEGACY_KEYS, "group")
PROJECT_KEYS = ("requires-python", "dependencies", "optional-dependencies")
# The [tool.poetry] keys that change what is installed (an edit elsewhere, [tool.poetry.scripts], does not).
DIGEST_KEYS = (*RELEVANT_KEYS, "package-mode", "packages")
# Lock entries uv cannot be constrained to by version (the requirement names the source itself).
UNPINNED_SOURCES = ("git", "url", "directory", "file")
_RELEASE = re.compile(r"^\s*v?(\d+(?:\.\d+)*)")
_OPERATOR = re.compile(r"^(~=|===|==|!=|<=|>=|<|>|=|\^|~)?\s*(.+)$")


@dataclass
class Requirements:
    lines: list[str] = field(default_factory=list)  # a requirements file's lines
    groups: list[str] = field(default_factory=list)  # the groups installed, in order ("dev", "test" ...)
    dependency_groups: list[str] = field(default_factory=list)  # of [dependency-groups]: uv's --group


def tool(data: dict) -> dict:
    poetry = (data.get("tool") or {}).get("poetry")
    return poetry if isinstance(poetry, dict) else {}


def declares(data: dict) -> bool:
    """A pyproject.toml whose [tool.poetry] declares dependencies (not only a name and a version)."""
    poetry = tool(data)
    return any(poetry.get(key) for key in ("dependencies", "group", "dev-dependencies"))


def is_package(data: dict) -> bool | None:
    """poetry's `package-mode = false` says the project is not a package; None when it says nothing."""
    mode = tool(data).get("package-mode")
    return mode if isinstance(mode, bool) else None


def _bump(release: list[int], index: int) -> str:
    return ".".join(str(n) for n in [*release[:index], release[index] + 1])


def specifier(constraint: str) -> str | None:
    """poetry's version constraint as a PEP 440 specifier ("" for any version); None when PEP 440 cannot
    say it (an `||` of ranges): the lock's pin decides then."""
    text = re.sub(r"(~=|===|==|!=|<=|>=|<|>|=|\^|~)\s+", r"\1", constraint.strip())  # `>= 1.2`
    if "||" in text or re.search(r"(?<!\|)\|(?!\|)", text):
        return None
    parts = [p for p in re.split(r"\s*,\s*|\s+(?=[<>=!~^\d])", text) if p and p != "*"]
    out = []
    for part in parts:
        match = _OPERATOR.match(part)
        if match is None:
            return None
        op, version = match.group(1) or "", match.group(2).strip()
        if op in ("^", "~"):
            release_match = _RELEASE.match(version)
            if release_match is None:
                return None
            release = [int(n) for n in release_match.group(1).split(".")]
            if op == "^":  # the first non-zero part may not change (^0.2.3: <0.3)
                index = next((i for i, n in enumerate(release) if n != 0), len(release) - 1)
            else:  # ~1.2.3 and ~1.2: <1.3; ~1: <2
                index = 0 if len(release) == 1 else 1
            out += [f">={version}", f"<{_bump(release, min(index, len(release) - 1))}"]
        elif op in ("", "="):
            out.append(f"=={version}")
        else:
            out.append(f"{op}{version}")
    return ",".join(out)


def python_marker(constraint: str) -> str:
    """A `python = "^3.8"` restriction as a PEP 508 marker ("" for any Python)."""
    alternatives = []
    for alternative in re.split(r"\s*\|\|?\s*", constraint.strip()):
        spec = specifier(alternative)
        if not spec:
            return ""
        alternatives.append(" and ".join(
            f'python_full_version {m.group(1)} "{m.group(2)}"'
            for m in (re.match(r"(~=|==|!=|<=|>=|<|>)(.+)", s) for s in spec.split(",")) if m))
    return " or ".join(f"({a})" if len(alternatives) > 1 else a for a in alternatives)


def _marker(entry: dict) -> str:
    markers = []
    if isinstance(entry.get("python"), str) and python_marker(entry["python"]):
        markers.append(python_marker(entry["python"]))
    if isinstance(entry.get("platform"), str):
        markers.append(f'sys_platform == "{entry["platform"]}"')
    if isinstance(entry.get("markers"), str) and entry["markers"].strip():
        markers.append(entry["markers"].strip())
    return " and ".join(f"({m})" if len(markers) > 1 else m for m in markers)


def requirement(name: str, entry, root: Path) -> list[str]:
    """One [tool.poetry.dependencies] entry as requirements-file lines (none for an optional one: poetry
    installs those only with `--extras`)."""
    if isinstance(entry, list):  # multiple constraints, each for other markers
        return [line for item in entry for line in requirement(name, item, root)]
    if isinstance(entry, str):
        entry = {"version": entry}
    if not isinstance(entry, dict) or entry.get("optional"):
        return []
    extras = entry.get("extras") or []
    named = f"{name}[{','.join(extras)}]" if extras else name
    marker = _marker(entry)
    if entry.get("path"):
        path = (root / entry["path"]).resolve()
        if entry.get("develop"):
            return [f"-e {path}"]
        line = f"{named} @ {path.as_uri()}"
    elif entry.get("url"):
        line = f"{named} @ {entry['url']}"
    elif any(entry.get(vcs) for vcs in ("git", "hg", "bzr", "svn")):
        vcs = next(v for v in ("git", "hg", "bzr", "svn") if entry.get(v))
        url = entry[vcs]
        url = url if url.startswith(f"{vcs}+") else f"{vcs}+{url}"
        ref = entry.get("rev") or entry.get("tag") or entry.get("branch")
        line = f"{named} @ {url}" + (f"@{ref}" if ref else "")
        if entry.get("subdirectory"):
            line += f"#subdirectory={entry['subdirectory']}"
    else:
        line = named + (specifier(str(entry.get("version", "*"))) or "")
    return [line + (f" ; {marker}" if marker else "")]


def requirements(data: dict, root: Path) -> Requirements:
    """What `poetry install` installs from pyproject.toml: the main dependencies and the non-optional groups."""
    poetry = tool(data)
    out = Requirements()
    project = data.get("project") if isinstance(data.get("project"), dict) else {}
    if not project.get("dependencies"):  # poetry 2 reads [project] first; pyproject.toml itself gives those
        for name, entry in (poetry.get("dependencies") or {}).items():
            if name.lower() != "python":
                out.lines += requirement(name, entry, root)
    groups = poetry.get("group") if isinstance(poetry.get("group"), dict) else {}
    if poetry.get("dev-dependencies") and "dev" not in groups:
        groups = {"dev": {"dependencies": poetry["dev-dependencies"]}, **groups}
    for group, table in groups.items():
        if not isinstance(table, dict) or table.get("optional"):
            continue
        lines = [line for name, entry in (table.get("dependencies") or {}).items()
                 for line in requirement(name, entry, root)]
        if lines:
            out.lines += lines
            out.groups.append(group)
    for group in data.get("dependency-groups") or {}:
        if not (groups.get(group) or {}).get("optional"):
            out.dependency_groups.append(group)
            if group not in out.groups:
                out.groups.append(group)
    return out


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _lock_marker(package: dict) -> str:
    markers = package.get("markers")
    if isinstance(markers, dict):  # lock 2.1: one marker per group
        values = sorted({m for m in markers.values() if isinstance(m, str)})
        return "" if len(values) != len(markers) else " or ".join(f"({m})" for m in values)
    return markers if isinstance(markers, str) else ""


def pins(lock: dict) -> dict[str, list[tuple[str, str]]]:
    """Each locked package's versions, with the marker of each when the lock names more than one."""
    out: dict[str, list[tuple[str, str]]] = {}
    for package in lock.get("package") or []:
        if not isinstance(package, dict) or not package.get("name") or not package.get("version"):
            continue
        if (package.get("source") or {}).get("type") in UNPINNED_SOURCES:
            continue
        out.setdefault(_normal(package["name"]), []).append((str(package["version"]), _lock_marker(package)))
    return out


def constraints(lock: dict, direct: list[str]) -> tuple[list[str], list[str]]:
    """Constraint lines for uv from poetry.lock's packages, and the names left unpinned: a package the lock
    holds in several versions without markers to tell them apart (lock 1.x), and a direct requirement
    (`direct`: requirement lines) whose declared version the lock's pin does not fit (a lock out of date:
    the declaration wins)."""
    from packaging.requirements import InvalidRequirement, Requirement  # the reload server's start skips it

    declared: dict[str, list] = {}
    for line in direct:
        try:
            req = Requirement(line)
        except InvalidRequirement:
            continue
        declared.setdefault(_normal(req.name), []).append(req.specifier)
    lines, unpinned = [], []
    for name, versions in sorted(pins(lock).items()):
        if any(not any(spec.contains(v, prereleases=True) for v, _ in versions) for spec in declared.get(name, [])):
            unpinned.append(name)
        elif len(versions) == 1:
            lines.append(f"{name}=={versions[0][0]}")
        elif all(marker for _, marker in versions):
            lines += [f"{name}=={version} ; {marker}" for version, marker in versions]
        else:
            unpinned.append(name)
    return lines, unpinned


def content_hash(data: dict, with_dependency_groups: bool = True) -> str:
    """poetry's hash of the declarations poetry.lock was made from (poetry.packages.locker, poetry 1.x-2.x)."""
    project = data.get("project") if isinstance(data.get("project"), dict) else {}
    groups = (data.get("dependency-groups") or {}) if with_dependency_groups else {}
    poetry = tool(data)
    relevant_project = {key: project[key] for key in PROJECT_KEYS if project.get(key) is not None}
    relevant_poetry = {}
    for key in RELEVANT_KEYS:
        value = poetry.get(key)
        if value is None and (key not in LEGACY_KEYS or relevant_project or groups):
            continue
        relevant_poetry[key] = value
    relevant: dict = {}
    if relevant_project:
        relevant["project"] = relevant_project
    if groups:
        relevant["dependency-groups"] = groups
    if relevant:
        relevant["tool"] = {"poetry": relevant_poetry}
    else:  # poetry's backwards compatibility: [tool.poetry]'s keys at the top level
        relevant = relevant_poetry
    return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()


def is_fresh(data: dict, lock: dict) -> bool:
    """poetry.lock was made from these declarations (its content-hash; older poetry hashed without
    [dependency-groups])."""
    recorded = (lock.get("metadata") or {}).get("content-hash")
    return recorded in (content_hash(data), content_hash(data, with_dependency_groups=False))
