"""`make bench BENCH_ARGS="--only realworld"`: large public projects, unstuck beside the framework's own dev server.

For each project of tests/realworld_projects.py (checkouts from REALWORLD_SRC, else cloned), two containers of the
same image run side by side: unstuck, and the framework's dev server (`manage.py runserver`, `uvicorn --reload`)
started from the same project environment (the volume unstuck installed into) on a copy of the same prepared tree
(database and media included). Saves alternate between the two, each `think` s (default 1.5) after the previous
answer, so what unstuck does after a reload (the spare, the app layer) is part of each figure. Timed from the save
to the first answer carrying the new text: a view edited (leaf), the module most others import edited (central;
the view shows its text), and a fix saved after a SyntaxError (broken -> fixed, timed from the fix once the broken
save shows). Then the memory (PSS, /proc/PID/smaps_rollup) of unstuck's processes and of the framework server's.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

import docker
import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from containers import LABEL, SESSION, free_port  # noqa: E402
from realworld_projects import (HEADERS, PROJECTS, central_block, copy_tree, export, leaf_block,  # noqa: E402
                                with_block)
from repo import REPO  # noqa: E402

import reload_phases  # noqa: E402

POLL_S = 0.005

# Run in a container as the app's user: PSS (kB) and name of each process.
PSS_SCRIPT = r"""
import json, os
out = []
for pid in filter(str.isdigit, os.listdir("/proc")):
    if int(pid) == os.getpid():
        continue
    try:
        comm = open(f"/proc/{pid}/comm").read().strip()
        cmd = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode()[:80]
        pss = next(int(l.split()[1]) for l in open(f"/proc/{pid}/smaps_rollup") if l.startswith("Pss:"))
    except (OSError, StopIteration):
        continue
    out.append([int(pid), comm, cmd, pss])
print(json.dumps(out))
"""


def pss(container) -> list:
    result = container.exec_run(["python3", "-c", PSS_SCRIPT], user="1000")
    return json.loads(result.output.decode().strip().splitlines()[-1])


def status(container) -> dict:
    return json.loads(container.exec_run(["unstuck", "status", "--json"]).output or b"{}")


def build_image(client: docker.DockerClient, project, tags: list) -> str:
    args = {"BASE_IMAGE": project.base}
    if project.build_packages is not None:
        args["UNSTUCK_BUILD_PACKAGES"] = project.build_packages
    tag = f"unstuck-bench-realworld:{SESSION}-{project.name}"
    image, _ = client.images.build(path=str(REPO), buildargs=args, tag=tag, target="unstuck", labels={LABEL: SESSION},
                                   rm=True, forcerm=True)
    tags.append(tag)
    return image.id


class Server:
    """One of the two servers: its container, port and tree."""

    def __init__(self, name: str, container, port: int, tree: Path) -> None:
        self.name, self.container, self.port, self.tree = name, container, port, tree

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


def wait_until(client: httpx.Client, url: str, check, timeout: float, what: str) -> float:
    started = time.monotonic()
    last = "no answer"
    while time.monotonic() - started < timeout:
        try:
            response = client.get(url, headers=HEADERS)
            if check(response):
                return time.monotonic() - started
            last = f"{response.status_code} {response.text[:200]!r}"
        except httpx.HTTPError as exc:
            if check(None):
                return time.monotonic() - started
            last = repr(exc)
        time.sleep(POLL_S)
    raise TimeoutError(f"{url}: {what} not within {timeout:g} s; last: {last}")


def carries(text: str):
    return lambda r: r is not None and r.status_code == 200 and text in r.text


def lacks(text: str):
    """The page no longer serves `text`: an error page, a refused connection (a dev server that cannot import)."""
    return lambda r: r is None or r.status_code != 200 or text not in r.text


def bench_project(client: docker.DockerClient, project, workdir: Path, tags: list, containers: list,
                  edits: int, think: float) -> dict:
    image = build_image(client, project, tags)
    env_volume = client.volumes.create(f"unstuck-bench-{SESSION}-{project.name}-env", labels={LABEL: SESSION})
    tree = export(project, workdir / f"{project.name}-unstuck")
    port = free_port()
    unstuck = client.containers.run(
        image, detach=True, labels={LABEL: SESSION}, environment=project.env, ports={"8000/tcp": ("127.0.0.1", port)},
        volumes={str(tree): {"bind": "/workspace", "mode": "rw"}, env_volume.name: {"bind": "/home/app/.unstuck",
                                                                                    "mode": "rw"}})
    containers.append(unstuck)
    servers = {"unstuck": Server("unstuck", unstuck, port, tree)}
    with httpx.Client(timeout=60) as http:
        started = time.monotonic()
        wait_until(http, servers["unstuck"].url(project.urls[0]), lambda r: r is not None and r.status_code != 503,
                   project.first_start_s, "the first answer")
        first_start = time.monotonic() - started
        if project.release:
            deadline = time.monotonic() + project.first_start_s
            while (status(unstuck).get("release") or {}).get("state") != "ok":
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{project.name}: the release did not run")
                time.sleep(0.5)
        for command in project.setup:
            result = unstuck.exec_run(list(command), user="1000")
            if result.exit_code:
                raise SystemExit(f"bench: {project.name}: {' '.join(command)} failed: {result.output[-2000:]}")
        # The framework's own server on a copy of the prepared tree, from the environment unstuck installed.
        framework_tree = copy_tree(tree, workdir / f"{project.name}-framework")
        fport = free_port()
        framework = client.containers.run(
            image, detach=True, labels={LABEL: SESSION}, environment=project.env, entrypoint=list(
                project.framework_server), working_dir="/workspace", ports={"8000/tcp": ("127.0.0.1", fport)},
            volumes={str(framework_tree): {"bind": "/workspace", "mode": "rw"},
                     env_volume.name: {"bind": "/home/app/.unstuck", "mode": "ro"}})
        containers.append(framework)
        label = "runserver" if "runserver" in project.framework_server else " ".join(project.framework_server[:1])
        servers["framework"] = Server(label, framework, fport, framework_tree)
        started = time.monotonic()
        wait_until(http, servers["framework"].url(project.urls[0]), lambda r: r is not None and r.status_code < 500,
                   project.first_start_s, "the framework server's first answer")
        framework_start = time.monotonic() - started

        originals = {k: ((s.tree / project.leaf).read_text(), (s.tree / project.central).read_text())
                     for k, s in servers.items()}

        def save(server: Server, path: str, text: str) -> None:
            with open(server.tree / path, "w") as f:
                f.write(text)

        def timed(server: Server, path: str, text: str, marker: str) -> float:
            begun = time.monotonic()
            save(server, path, text)
            wait_until(http, server.url(project.leaf_url), carries(marker), project.step_s, f"{marker!r} served")
            return time.monotonic() - begun

        figures = {k: {"leaf": [], "central": [], "fixed": []} for k in servers}
        order = list(servers)
        for i in range(edits):  # leaf edits, alternating, each `think` s after the previous answer
            for key in (order if i % 2 == 0 else order[::-1]):
                time.sleep(think)
                label = f"bench leaf {i} {key}"
                figures[key]["leaf"].append(timed(servers[key], project.leaf, with_block(
                    originals[key][0], leaf_block(project, label)), label))
        unstuck_status_after_leaf = status(unstuck)
        last = {}  # the label each server serves now
        for i in range(max(2, edits // 3)):  # the module most others import; the view shows its text
            for key in order:
                time.sleep(think)
                label = f"bench central {i} {key}"
                figures[key]["central"].append(timed(servers[key], project.central, with_block(
                    originals[key][1], central_block(label)), label))
                last[key] = label
        for i in range(max(2, edits // 3)):  # broken -> fixed, timed from the fix once the broken save shows
            for key in order:
                server = servers[key]
                time.sleep(think)
                save(server, project.leaf, with_block(originals[key][0], leaf_block(project, "broken", syntax_error=True)))
                wait_until(http, server.url(project.leaf_url), lacks(last[key]), project.step_s, "the broken save shown")
                time.sleep(think)
                last[key] = f"bench fixed {i} {key}"
                figures[key]["fixed"].append(timed(server, project.leaf, with_block(
                    originals[key][0], leaf_block(project, last[key])), last[key]))
        time.sleep(think)
        final = status(unstuck)
        memory = {"unstuck": pss(unstuck), "framework": pss(framework)}
    for container in (unstuck, framework):
        container.remove(force=True)
        containers.remove(container)
    env_volume.remove(force=True)
    return {"figures": figures, "first_start": first_start, "framework_start": framework_start,
            "memory": memory, "status": final, "status_after_leaf": unstuck_status_after_leaf,
            "framework_name": servers["framework"].name}


def memory_lines(result: dict) -> list[str]:
    final = result["status"]
    worker_pid = final.get("worker_pid")
    rows = {"reload server": 0, "warm process": 0, "spare": 0, "app layer": 0, "serving generation": 0,
            "other generations": 0}
    for pid, comm, cmd, kb in result["memory"]["unstuck"]:
        if comm == "unstuck-serve":
            rows["reload server"] += kb
        elif comm == "unstuck-warm":
            rows["warm process"] += kb
        elif comm == "unstuck-spare":
            rows["spare"] += kb
        elif comm == "unstuck-layer":
            rows["app layer"] += kb
        elif pid == worker_pid:
            rows["serving generation"] += kb
        elif comm.startswith("unstuck-worker"):
            rows["other generations"] += kb
    total = sum(kb for _, _, _, kb in result["memory"]["unstuck"])
    framework = sorted(result["memory"]["framework"], key=lambda row: -row[3])
    lines = ["  memory (PSS, MB): " + "  ".join(f"{k} {v / 1024:.0f}" for k, v in rows.items() if v)
             + f"  | container total {total / 1024:.0f}"]
    lines.append("  framework server PSS, MB: " + "  ".join(f"{comm} {kb / 1024:.0f}" for _, comm, _, kb in framework
                                                           if kb > 1024)
                 + f"  | total {sum(row[3] for row in framework) / 1024:.0f}")
    return lines


def report(project, result: dict, edits: int, think: float) -> str:
    f = result["figures"]
    u, v = f["unstuck"], f["framework"]
    name = result["framework_name"]

    def row(label: str, a: list, b: list, p: float = 0.5) -> str:
        qa, qb = quantile(a, p), quantile(b, p)
        return f"  {label:44} {qa:>9.3f} s {qb:>9.3f} s {qa / qb:>6.2f}"

    lines = [f"project: {project.name} ({project.repo} @ {project.commit[:10]}; {project.why})",
             f"  {'':44} {'unstuck':>11} {name[:11]:>11} {'ratio':>6}",
             row(f"leaf edit p50 ({edits} saves, {think:g} s apart)", u["leaf"], v["leaf"]),
             row("leaf edit p95", u["leaf"], v["leaf"], 0.95),
             row(f"central edit p50 ({len(u['central'])} saves)", u["central"], v["central"]),
             row(f"broken -> fixed p50 ({len(u['fixed'])} fixes)", u["fixed"], v["fixed"]),
             f"  {'container start -> first answer':44} {result['first_start']:>9.1f} s "
             f"{result['framework_start']:>9.1f} s  (unstuck: install + first import; the framework: from that env)",
             f"  unstuck leaf saves, each: " + " ".join(f"{t:.2f}" for t in u["leaf"]),
             f"  unstuck reloads came from: " + ", ".join(
                 f"{src} {n}" for src, n in sources(result["status"]).items()),
             f"  unstuck leaf reload phases, median s after the save: " + "  ".join(
                 f"{k} {v:.3f}" for k, v in reload_phases.medians(result["status_after_leaf"], project.leaf).items()),
             f"  app layer: {result['status'].get('app_layer')}; fast path narrowed: "
             f"{result['status'].get('fast_path') or 'no'}"]
    lines += memory_lines(result)
    return "\n".join(lines)


def sources(final: dict) -> dict:
    counts: dict = {}
    for record in final.get("reloads", []):
        counts[record.get("from")] = counts.get(record.get("from"), 0) + 1
    return counts


def quantile(values: list, q: float) -> float:
    ordered = sorted(values)
    if q == 0.5:
        return statistics.median(ordered)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def bench_realworld(client: docker.DockerClient, workdir: Path, tags: list, containers: list, names: list,
                    edits: int, think: float) -> str:
    out = []
    for name in names:
        project = PROJECTS[name]
        print(f"measuring {name} ...", flush=True)
        result = bench_project(client, project, workdir, tags, containers, edits, think)
        out.append(report(project, result, edits, think))
        print(out[-1], flush=True)
    return out
