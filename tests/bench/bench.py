"""`make bench`: unstuck against plain `uvicorn --reload`, side by side in one run, in the same image.

For the tiny sample app, a heavy app (FastAPI, pydantic, SQLAlchemy, Jinja2, pandas, httpx) and a realistic
one (realistic_app: a small production-shaped service, settings, SQLModel tables, CRUD, a dozen routers), two
containers run at once from the same image, one per reloader (UNSTUCK_RELOADER=unstuck / uvicorn), each
with its own copy of the app bind-mounted. Edits are saved from the host, alternating between the two,
each `--think` s (default 1) after the previous answer, and timed from the save to the first HTTP 200
carrying the new content. Printed per app: save->served p50/p95 and the ratio unstuck/uvicorn; rapid
saves (each the instant the previous one is served); the first reload after a container start, both
`--think` s after its first 200 and at once; fix-after-broken -> served; failed requests (refused, reset,
5xx) under a continuous request loop across reloads; container start -> first 200; idle CPU.
With `--only watcher`, it measures only the file watcher (entrypoint/unstuck/watching/watcher.py) on realistic trees
of 10,000 and 100,000 files (nested packages of small .py files, a .venv and a node_modules): the time
until it watches, the watching process's RSS and idle CPU, save -> batch, what a restart's catch-up walk and
an inotify retry cost, with inotify, with polling, and with inotify's watch limit at 8192 (the default on
many hosts, set in a user namespace of the container: the host's limit is not touched); then save ->
served for the first reloads of the whole server on the 100,000-file tree.
With `--only shares`, a Docker Desktop share simulated by a FUSE view (tests/fuse_view.py: bindfs with the
type fuse.grpcfuse) mounted at /workspace/app: save -> served p50 through the view beside a local bind mount
in the same run, a change and a deletion beneath the view (no inotify event) -> served, and the watcher
process's idle CPU on 10,000 watched files through the view: inotify alone, with the safety poll at its
interval, and at the fast interval it switches to after a miss.
The install section times a realistic dependency set (install-requirements.txt) installed into a fresh
environment in a container of the image: pip as unstuck used to run it, and uv as it runs now, with a cold
and with a warm cache (`--only install` runs that section alone).
Everything it creates is labelled io.unstuck.test and removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import docker
import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from containers import LABEL, SESSION, default_base_image, free_port, readable_copy  # noqa: E402
from fuse_view import Unavailable, fuse_view, sample_with_extra_module  # noqa: E402
from repo import REPO  # noqa: E402

import reload_phases  # noqa: E402

RELOADERS = ("unstuck", "uvicorn")
POLL_S = 0.002  # the client polls every 2 ms: the figure is the reload, not the poll interval
TIMEOUT_S = 60.0


class Bench:
    def __init__(self, client: docker.DockerClient, image: str, workdir: Path) -> None:
        self.client = client
        self.image = image
        self.workdir = workdir
        self.containers = []

    def start(self, name: str, app_src: Path, reloader: str):
        app_dir = self.workdir / f"{name}-{reloader}-{len(self.containers)}" / "app"
        readable_copy(app_src, app_dir)
        port = free_port()
        container = self.client.containers.run(
            self.image, detach=True, labels={LABEL: SESSION}, environment={"UNSTUCK_RELOADER": reloader},
            ports={"8000/tcp": ("127.0.0.1", port)},
            volumes={str(app_dir): {"bind": "/workspace/app", "mode": "rw"}})
        self.containers.append(container)
        return container, port, app_dir

    def cleanup(self) -> None:
        for container in self.containers:
            try:
                container.remove(force=True)
            except docker.errors.APIError:
                pass


def wait_body(client: httpx.Client, url: str, needle: str, timeout: float = TIMEOUT_S) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            r = client.get(url)
            if r.status_code == 200 and needle in r.text:
                return time.monotonic() - start
        except httpx.HTTPError:
            pass
        time.sleep(POLL_S)
    raise TimeoutError(f"{url}: {needle!r} not served within {timeout} s")


def wait_logs(container, needle: str, count: int, timeout: float = TIMEOUT_S) -> None:
    start = time.monotonic()
    while container.logs().decode(errors="replace").count(needle) < count:
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"{needle!r} did not appear {count} times in the logs")
        time.sleep(0.02)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def with_marker(source: str, marker: str) -> str:
    return source.replace("Hello from unstuck", marker)


def save(path: Path, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def save_and_time(client: httpx.Client, app_dir: Path, port: int, source: str, marker: str) -> float:
    """Save main.py with `marker` in it; seconds until it is served."""
    started = time.monotonic()
    save(app_dir / "main.py", with_marker(source, marker))
    wait_body(client, f"http://127.0.0.1:{port}/", marker)
    return time.monotonic() - started


def cpu_seconds(container) -> float:
    return container.stats(stream=False)["cpu_stats"]["cpu_usage"]["total_usage"] / 1e9


WATCHER_CPU = (
    "import os\n"
    "for p in [d for d in os.listdir('/proc') if d.isdigit()]:\n"
    "    try:\n"
    "        stat = open(f'/proc/{p}/stat').read(); cmd = open(f'/proc/{p}/cmdline').read()\n"
    "    except OSError:\n"
    "        continue\n"
    "    if 'unstuck-serve' in stat or ('--reload' in cmd and 'uvicorn' in cmd):\n"
    "        f = stat[stat.rindex(')') + 2:].split()\n"
    "        print((int(f[11]) + int(f[12])) / os.sysconf('SC_CLK_TCK'))\n"
)


def watcher_cpu_seconds(container) -> float:
    """CPU time of the process that watches files (unstuck's reloader, or uvicorn's reload supervisor)."""
    out = container.exec_run(["python", "-c", WATCHER_CPU]).output.decode().split()
    return float(out[0]) if out else float("nan")


def bench_app(bench: Bench, name: str, app_src: Path, edits: int, reloads: int, think: float) -> dict:
    result = {name: {} for name in RELOADERS}
    running = {r: bench.start(name, app_src, r) for r in RELOADERS}
    with httpx.Client(timeout=10) as client:
        for reloader, (container, port, app_dir) in running.items():
            wait_body(client, f"http://127.0.0.1:{port}/", "Hello from unstuck")
        original = {r: (app_dir / "main.py").read_text() for r, (_, _, app_dir) in running.items()}

        # save -> served, alternating between the two reloaders, each save `think` s after the previous
        # answer (a developer reads the page before the next save; without the pause, every other save of
        # one reloader lands the instant its previous reload is served, while that reload still finishes).
        times = {r: [] for r in RELOADERS}
        for i in range(edits):
            order = RELOADERS if i % 2 == 0 else RELOADERS[::-1]
            for reloader in order:
                _, port, app_dir = running[reloader]
                time.sleep(think)
                times[reloader].append(save_and_time(client, app_dir, port, original[reloader], f"edit-{i}-{reloader}"))
        for reloader in RELOADERS:
            result[reloader]["p50"] = statistics.median(times[reloader])
            result[reloader]["p95"] = pct(times[reloader], 0.95)
        result["unstuck"]["phases"] = phase_medians(running["unstuck"][0])

        # Rapid saves: each the instant the previous one is served, one reloader after the other.
        for reloader in RELOADERS:
            _, port, app_dir = running[reloader]
            rapid = [save_and_time(client, app_dir, port, original[reloader], f"rapid-{i}-{reloader}")
                     for i in range(max(5, edits // 3))]
            result[reloader]["rapid"] = statistics.median(rapid)

        # fix after a broken save -> served.
        fixes = {r: [] for r in RELOADERS}
        for i in range(max(3, edits // 6)):
            for reloader in RELOADERS:
                container, port, app_dir = running[reloader]
                save(app_dir / "main.py", original[reloader] + "\ndef broken(:\n")
                wait_logs(container, "SyntaxError", i + 1)
                fixes[reloader].append(save_and_time(client, app_dir, port, original[reloader], f"fixed-{i}-{reloader}"))
        for reloader in RELOADERS:
            result[reloader]["fix"] = statistics.median(fixes[reloader])

        # idle CPU: the watcher process, and everything in the container (supervisor, server ...).
        time.sleep(2)
        before = {r: (cpu_seconds(c), watcher_cpu_seconds(c), time.monotonic()) for r, (c, _, _) in running.items()}
        time.sleep(10)
        for reloader, (container, _, _) in running.items():
            cpu0, watcher0, t0 = before[reloader]
            elapsed = time.monotonic() - t0
            result[reloader]["idle_cpu"] = (cpu_seconds(container) - cpu0) / elapsed
            result[reloader]["watcher_cpu"] = (watcher_cpu_seconds(container) - watcher0) / elapsed

    # failed requests under continuous traffic across reloads.
    for reloader in RELOADERS:
        container, port, app_dir = running[reloader]
        url = f"http://127.0.0.1:{port}/"
        stop = threading.Event()
        counts = {"ok": 0, "failed": 0}

        def traffic():
            with httpx.Client(timeout=10) as traffic_client:
                while not stop.is_set():
                    try:
                        ok = traffic_client.get(url).status_code < 500
                    except httpx.HTTPError:
                        ok = False
                    counts["ok" if ok else "failed"] += 1

        thread = threading.Thread(target=traffic, daemon=True)
        thread.start()
        with httpx.Client(timeout=10) as client:
            for i in range(reloads):
                save_and_time(client, app_dir, port, original[reloader], f"traffic-{i}")
        stop.set()
        thread.join(timeout=15)
        result[reloader]["requests"] = counts["ok"] + counts["failed"]
        result[reloader]["failed"] = counts["failed"]

    result["unstuck"]["first"] = first_reloads(bench, name, app_src, think)
    result["unstuck"]["first_at_once"] = first_reloads(bench, name, app_src, 0.0)

    # container start (image built) -> first 200.
    for reloader in RELOADERS:
        starts = []
        for _ in range(3):
            started = time.monotonic()
            container, port, _ = bench.start(name, app_src, reloader)
            with httpx.Client(timeout=10) as client:
                wait_body(client, f"http://127.0.0.1:{port}/", "Hello from unstuck")
            starts.append(time.monotonic() - started)
            container.remove(force=True)
        result[reloader]["cold"] = statistics.median(starts)
    for container, _, _ in running.values():
        container.remove(force=True)
    return result


def phase_medians(container) -> dict:
    """The median of each phase of unstuck's last reloads of main.py (`unstuck status --json` keeps 20), in
    seconds after the save."""
    return reload_phases.medians(json.loads(container.exec_run(["unstuck", "status", "--json"]).output), "main.py")


def first_reloads(bench: Bench, name: str, app_src: Path, think: float) -> dict:
    """The first reload, `think` s after a container's first 200: in a new container (the warm process knows
    nothing of the app yet) and after `docker restart` (it has the app's module list)."""
    container, port, app_dir = bench.start(name, app_src, "unstuck")
    source = (app_dir / "main.py").read_text()
    url = f"http://127.0.0.1:{port}/"
    with httpx.Client(timeout=10) as client:
        wait_body(client, url, "Hello from unstuck")
        time.sleep(think)
        fresh = save_and_time(client, app_dir, port, source, "first-in-a-new-container")
        container.restart(timeout=10)
        wait_body(client, url, "first-in-a-new-container")
        time.sleep(think)
        restarted = save_and_time(client, app_dir, port, source, "first-after-a-restart")
    container.remove(force=True)
    return {"fresh": fresh, "restarted": restarted}


def bench_polling(bench: Bench, files: int) -> str:
    """Idle CPU of the watcher on a tree of `files` files, polling (UNSTUCK_POLL=1) and with inotify."""
    tree = bench.workdir / "big-tree"
    readable_copy(REPO / "app", tree)
    for i in range(files):
        sub = tree / f"pkg{i // 500}"
        sub.mkdir(exist_ok=True)
        (sub / f"m{i}.py").write_text(f"X = {i}\n")
    for path in [tree, *tree.iterdir()]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    for path in tree.rglob("*.py"):
        path.chmod(0o644)
    lines = [f"watching a tree of {files} files, idle (no changes), watcher process CPU:"]
    for poll in ("1", "0"):
        port = free_port()
        container = bench.client.containers.run(
            bench.image, detach=True, labels={LABEL: SESSION}, environment={"UNSTUCK_POLL": poll},
            ports={"8000/tcp": ("127.0.0.1", port)}, volumes={str(tree): {"bind": "/workspace/app", "mode": "ro"}})
        bench.containers.append(container)
        with httpx.Client(timeout=10) as client:
            wait_body(client, f"http://127.0.0.1:{port}/", "Hello from unstuck")
        time.sleep(3)  # let the first full scan of the tree pass
        cpu0, t0 = watcher_cpu_seconds(container), time.monotonic()
        time.sleep(10)
        share = (watcher_cpu_seconds(container) - cpu0) / (time.monotonic() - t0)
        mode = "polling (UNSTUCK_POLL=1, default interval)" if poll == "1" else "inotify"
        lines.append(f"  {mode:46} {share * 100:>6.2f} %")
        container.remove(force=True)
    return "\n".join(lines)


# -- Docker Desktop shares, simulated (--only shares) ------------------------------------------------------



def run_on(bench: Bench, app_dir: Path, env: dict | None = None):
    port = free_port()
    container = bench.client.containers.run(
        bench.image, detach=True, labels={LABEL: SESSION}, environment=env or {},
        ports={"8000/tcp": ("127.0.0.1", port)}, volumes={str(app_dir): {"bind": "/workspace/app", "mode": "rw"}})
    bench.containers.append(container)
    return container, port


def wait_watcher_watching(container, timeout: float = 300) -> None:
    """Until `unstuck status` says the file watcher watches (on a large tree through FUSE, inotify's setup
    takes seconds after the first 200; the safety poll's first look, which lists every directory, follows)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        status = json.loads(container.exec_run(["unstuck", "status", "--json"]).output or b"{}")
        if (status.get("watcher") or {}).get("watching"):
            return
        time.sleep(0.2)
    raise TimeoutError("the file watcher did not start watching")


def idle_watcher_cpu(container, seconds: float = 30.0) -> float:
    """The watcher process's share of a core over `seconds` with nothing changing."""
    cpu0, t0 = watcher_cpu_seconds(container), time.monotonic()
    time.sleep(seconds)
    return (watcher_cpu_seconds(container) - cpu0) / (time.monotonic() - t0)


def bench_shares(bench: Bench, edits: int, think: float, files: int) -> str:
    lines = ["Docker Desktop share simulated by a FUSE view (bindfs, fuse.grpcfuse) at /workspace/app:"]
    work = bench.workdir / "shares"
    src, local = work / "src" / "app", work / "local" / "app"
    readable_copy(REPO / "app", local)
    main_src = sample_with_extra_module(src)
    try:
        view_cm = fuse_view(src, work / "view")
        view = view_cm.__enter__()
    except Unavailable as exc:
        return f"shares: skipped, {exc}"
    try:
        shared, shared_port = run_on(bench, view)
        plain, plain_port = run_on(bench, local)
        times = {"through the view": [], "local bind mount": []}
        with httpx.Client(timeout=10) as client:
            for port in (shared_port, plain_port):
                wait_body(client, f"http://127.0.0.1:{port}/", "Hello from unstuck")
            sources = {"through the view": main_src, "local bind mount": (local / "main.py").read_text()}
            for i in range(edits):
                for label, app_dir, port in (("through the view", view, shared_port),
                                             ("local bind mount", local, plain_port)):
                    time.sleep(think)
                    times[label].append(save_and_time(client, app_dir, port, sources[label], f"share-edit-{i}"))
            p50 = {label: statistics.median(values) for label, values in times.items()}
            for label, values in times.items():
                lines.append(f"  save -> served, {label:18} p50 {p50[label]:.3f} s  p95 {pct(values, 0.95):.3f} s "
                             f"({len(values)} saves, {think:g} s apart)")
            lines.append(f"  difference of the p50s: {(p50['through the view'] - p50['local bind mount']) * 1000:+.1f} ms")
            missed = json.loads(shared.exec_run(["unstuck", "status", "--json"]).output)["watcher"]["missed_by_events"]
            lines.append(f"  changes the safety poll found missed by the events so far: {missed}")
            time.sleep(think)
            started = time.monotonic()
            save(src / "main.py", with_marker(main_src, "beneath-the-view"))
            wait_body(client, f"http://127.0.0.1:{shared_port}/", "beneath-the-view")
            lines.append(f"  a change beneath the view (no event) -> served: {time.monotonic() - started:.3f} s "
                         "(safety poll every 5 s)")
            time.sleep(think)
            started = time.monotonic()
            (src / "extra.py").unlink()
            wait_body(client, f"http://127.0.0.1:{shared_port}/extra", '"none"')
            lines.append(f"  a deletion beneath the view -> served: {time.monotonic() - started:.3f} s "
                         "(the poll is fast after the first miss: 500 ms)")
        print("\n".join(lines), flush=True)
        for container in (shared, plain):
            container.remove(force=True)
            bench.containers.remove(container)
        (src / "main.py").write_text(main_src)  # the sample's text again, which the next containers wait for
        lines.append(f"  watcher process CPU, idle, {files} watched files through the view:")
        for i in range(files):
            sub = src / f"pkg{i // 1000}" / f"sub{i // 100 % 10}"
            if i % 100 == 0:
                sub.mkdir(parents=True, exist_ok=True)
            (sub / f"m{i}.py").write_text(f"X = {i}\n")
        for path in src.rglob("pkg*"):
            path.chmod(0o755 if path.is_dir() else 0o644)
        for label, env, miss in (("inotify alone (UNSTUCK_POLL_SAFETY_MS=0)", {"UNSTUCK_POLL_SAFETY_MS": "0"}, False),
                                 ("inotify + safety poll every 5 s", {}, False),
                                 ("inotify + poll every 500 ms after a miss", {}, True)):
            container, port = run_on(bench, view, env)
            with httpx.Client(timeout=10) as client:
                wait_body(client, f"http://127.0.0.1:{port}/", "Hello from unstuck", timeout=120)
                wait_watcher_watching(container)
                if miss:
                    save(src / "pkg0" / "sub0" / "m0.py", "X = 'missed'\n")
                    wait_logs(container, "no inotify event reported", 1)
            time.sleep(5)  # the first look, which lists every directory, is not the steady cost
            share = idle_watcher_cpu(container)
            every = json.loads(container.exec_run(["unstuck", "status", "--json"]).output)["watcher"]["safety_poll_ms"]
            lines.append(f"    {label:42} {share * 100:6.2f} % of a core (poll every {every} ms)")
            print(lines[-1], flush=True)
            container.remove(force=True)
            bench.containers.remove(container)
    finally:
        for container in list(bench.containers):
            try:
                container.remove(force=True)
            except docker.errors.APIError:
                pass
        view_cm.__exit__(None, None, None)
    return "\n".join(lines)


# -- the file watcher on large trees (--only watcher) ----------------------------------------------------

WATCHER_DRIVER = HERE / "watcher_driver.py"
LOW_WATCH_LIMIT = 8192  # fs.inotify.max_user_watches on many hosts (kernels before 5.11, Docker Desktop's VM)


def make_tree(root: Path, files: int) -> dict:
    """The sample app plus `files` files: 70 % source (.py, 15 per package, three levels deep), 15 % in a
    .venv (10 per directory) and 15 % in node_modules (5 per directory)."""
    readable_copy(REPO / "app", root / "app")
    counts = {"source": int(files * 0.70), "venv": int(files * 0.15)}
    counts["node_modules"] = files - counts["source"] - counts["venv"]
    made_dirs = set()

    def write(path: Path, text: str) -> None:
        if path.parent not in made_dirs:
            path.parent.mkdir(parents=True, exist_ok=True)
            made_dirs.add(path.parent)
        path.write_text(text)

    for i in range(counts["source"]):
        leaf = i // 15
        package = root / "src" / f"pkg{leaf // 100}" / f"sub{leaf // 10 % 10}" / f"leaf{leaf % 10}"
        write(package / f"m{i % 15}.py", f"VALUE = {i}\n\ndef f(x):\n    return x + VALUE\n")
        if i % 15 == 0:
            write(package / "__init__.py", "")
    for i in range(counts["venv"]):
        write(root / ".venv" / "lib" / "python3.11" / "site-packages" / f"dist{i // 10}" / f"mod{i % 10}.py", "X = 1\n")
    for i in range(counts["node_modules"]):
        write(root / "node_modules" / f"pkg{i // 5}" / "lib" / f"f{i % 5}.js", "module.exports = 1;\n")
    dirs = 0
    for directory, _, names in os.walk(root):  # readable by the container's user whatever the umask
        dirs += 1
        os.chmod(directory, 0o755)
        for name in names:
            os.chmod(os.path.join(directory, name), 0o644)
    return {"files": files, "dirs": dirs}


def driver_reports(container) -> list[dict]:
    lines = container.logs().decode(errors="replace").splitlines()
    return [json.loads(line[3:]) for line in lines if line.startswith("@@ ")]


def wait_report(container, key: str, after: int = 0, path: str | None = None, timeout: float = 300) -> tuple[dict, int]:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        reports = driver_reports(container)
        for i, r in enumerate(reports[after:], after):
            if key in r and (path is None or path in r.get("paths", [])):
                return r, i + 1
        container.reload()
        if container.status == "exited":
            break
        time.sleep(0.02)
    logs = container.logs().decode(errors="replace")[-3000:]
    raise TimeoutError(f"watcher driver: no {key!r} report within {timeout:g} s; logs:\n{logs}")


def run_driver(bench: Bench, tree: Path, args: list[str], userns: bool = False, saves: int = 5) -> dict:
    """The watcher driver in a container on `tree`: its figures, and save -> batch from the host."""
    command = ["python", "/bench/watcher_driver.py", *args]
    binds = {str(tree): {"bind": "/workspace", "mode": "rw"},
             str(WATCHER_DRIVER): {"bind": "/bench/watcher_driver.py", "mode": "ro"}}
    if userns:
        # A user namespace of its own, whose inotify limits the driver may lower: unshare needs seccomp off,
        # and /proc/sys must not be read-only (`--security-opt systempaths=unconfined`, which the SDK lacks).
        # The host's limits are not touched: what is written belongs to the new namespace.
        api = bench.client.api
        host_config = api.create_host_config(binds=binds, security_opt=["seccomp=unconfined"])
        host_config.update(MaskedPaths=[], ReadonlyPaths=[])
        created = api.create_container(bench.image, ["unshare", "--user", "--map-root-user", *command],
                                       entrypoint=[], stdin_open=True, labels={LABEL: SESSION},
                                       host_config=host_config)
        container = bench.client.containers.get(created["Id"])
        container.start()
    else:
        container = bench.client.containers.run(bench.image, command=command, entrypoint=[], detach=True,
                                                stdin_open=True, labels={LABEL: SESSION}, volumes=binds)
    bench.containers.append(container)
    try:
        result, seen = wait_report(container, "ready")
        target = tree / "src" / "pkg0" / "sub0" / "leaf0" / "m1.py"
        latencies = []
        for i in range(saves):
            # watchfiles' polling sees a file's mtime to the second only: a save in the same second as the
            # previous one would go unseen (see the report), so saves are a second apart.
            time.sleep(1.1)
            saved_at = time.time()
            save(target, f"VALUE = {i}\n")
            batch, seen = wait_report(container, "batch", seen, "/workspace/src/pkg0/sub0/leaf0/m1.py")
            latencies.append(batch["batch"] - saved_at)
        result["save_to_batch"] = statistics.median(latencies)
        return result
    finally:
        container.remove(force=True)
        bench.containers.remove(container)


def wait_watching(container, probe: Path, timeout: float = 300) -> float:
    """Save a watched file that the app does not import until the server reports it, and its reload is done:
    the watcher is live then (the server logs no such moment). Returns the monotonic time it was seen."""
    start = time.monotonic()
    reloads = container.logs().decode(errors="replace").count("reloaded in")
    while time.monotonic() - start < timeout:
        save(probe, f"# {time.time()}\n")
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            logs = container.logs().decode(errors="replace")
            if "change detected: app/_bench_probe.py" in logs:
                seen = time.monotonic()
                wait_logs(container, "reloaded in", reloads + 1, timeout)
                probe.unlink()
                wait_logs(container, "reloaded in", reloads + 2, timeout)  # the deletion's reload
                return seen
            time.sleep(0.05)
    raise TimeoutError(f"the server did not report a change within {timeout:g} s")


def bench_watcher(bench: Bench, sizes: list[int]) -> str:
    lines = ["file watcher alone (entrypoint/unstuck/watching/watcher.py in a container, uid 1000):",
             f"  {'tree':>8} {'dirs':>6} {'how':34} {'start':>8} {'RSS':>8} {'+RSS':>8} {'idle CPU':>9} "
             f"{'save->batch':>11} {'catch-up':>9} {'retry':>7}"]
    trees = {}
    for files in sizes:
        tree = bench.workdir / f"tree-{files}"
        print(f"  writing a tree of {files} files ...", flush=True)
        counts = make_tree(tree, files)
        trees[files] = tree
        runs = [("inotify", ["--poll", "0"], False), ("polling (500 ms)", ["--poll", "1"], False),
                (f"max_user_watches={LOW_WATCH_LIMIT}", ["--watches", str(LOW_WATCH_LIMIT)], True)]
        for label, args, userns in runs:
            r = run_driver(bench, tree, args, userns)
            how = label if label.startswith(r["mode"]) else f"{label}: {r['mode']}"
            retry = f"{r['retry_s'] * 1000:.0f} ms" if r.get("retry_s") is not None else "-"
            lines.append(f"  {files:>8} {counts['dirs']:>6} {how:34} {r['start_s']:>6.2f} s {r['rss_mb']:>5.0f} MB "
                         f"{r['rss_mb'] - r['rss_before_mb']:>5.0f} MB {r['idle_cpu'] * 100:>7.2f} % "
                         f"{r['save_to_batch']:>9.3f} s {r['catch_up_s']:>7.2f} s {retry:>7}")
            print(lines[-1], flush=True)
    largest = max(sizes)
    lines.append(f"whole server on the {largest}-file tree (current reloader), save -> served:")
    for label, env in (("inotify", {}), ("polling (500 ms)", {"UNSTUCK_POLL": "1"})):
        port = free_port()
        started = time.monotonic()
        container = bench.client.containers.run(
            bench.image, detach=True, labels={LABEL: SESSION}, environment=env,
            ports={"8000/tcp": ("127.0.0.1", port)},
            volumes={str(trees[largest]): {"bind": "/workspace", "mode": "rw"}})
        bench.containers.append(container)
        url = f"http://127.0.0.1:{port}/"
        main_py = trees[largest] / "app" / "main.py"
        source = main_py.read_text()
        with httpx.Client(timeout=10) as client:
            wait_body(client, url, "Hello from unstuck", timeout=300)
            first_200 = time.monotonic() - started
            live = wait_watching(container, trees[largest] / "app" / "_bench_probe.py") - started
            times = []
            for i in range(6):
                time.sleep(1.1)  # a second apart: see run_driver
                times.append(save_and_time(client, main_py.parent, port, source, f"big-tree-{label}-{i}"))
        main_py.write_text(source)
        lines.append(f"  {label:18} first reload {times[0]:.3f} s, next 5 p50 {statistics.median(times[1:]):.3f} s "
                     f"(container start -> first 200: {first_200:.1f} s, -> watcher live: {live:.1f} s)")
        print(lines[-1], flush=True)
        container.remove(force=True)
        bench.containers.remove(container)
# Runs inside the container (unstuck's runtime interpreter, as the image's user): each round installs the
# set into fresh environments with pip (no cache, as unstuck ran it before) and with uv, first with a new
# empty cache, then again into another fresh environment with that cache warm; each both with bytecode
# compiled by the install (pip's default; `unstuck deps`) and without (an install in place: unstuck has it
# compiled afterwards, in the background, so the app restarts with the new packages at once).
# Caches and environments share /tmp's filesystem, so uv hardlinks from its cache.
INSTALL_DRIVER = r"""
import json, os, re, subprocess, sys, tempfile, time
requirements, rounds = sys.argv[1], int(sys.argv[2])
work = tempfile.mkdtemp(prefix="bench-install-")
reqs = os.path.join(work, "requirements.txt")
open(reqs, "w").write(requirements)
uv = os.path.join(os.path.dirname(sys.executable), "uv")
base = sys._base_executable

def run(cmd, **env):
    started = time.monotonic()
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **env})
    if done.returncode:
        sys.exit(f"{' '.join(cmd[:3])} failed: {(done.stdout + done.stderr)[-3000:]}")
    return time.monotonic() - started, done.stdout + done.stderr

out = {"packages": 0, "pip_version": "", "uv_version": run([uv, "--version"])[1].split()[1]}
for i in range(rounds):
    for compiled in (True, False):
        pip_env = os.path.join(work, f"pip-{i}-{compiled}")
        run([base, "-m", "venv", pip_env])
        run([pip_env + "/bin/pip", "install", "-q", "--upgrade", "pip"])  # the newest pip, not the base's
        out["pip_version"] = run([pip_env + "/bin/pip", "--version"])[1].split()[1]
        flags = [] if compiled else ["--no-compile"]
        out.setdefault(f"pip {compiled}", []).append(run(
            [pip_env + "/bin/pip", "install", "--no-cache-dir", "--disable-pip-version-check", "--progress-bar",
             "off", *flags, "-r", reqs])[0])
        cache = os.path.join(work, f"uv-cache-{i}-{compiled}")
        for cold in (True, False):
            env = os.path.join(work, f"uv-{i}-{compiled}-{cold}")
            run([uv, "venv", "--quiet", "--python", base, env])
            flags = ["--compile-bytecode"] if compiled else []
            seconds, text = run([uv, "pip", "install", "--no-progress", *flags, "--python", env + "/bin/python",
                                 "-r", reqs], UV_CACHE_DIR=cache)
            out.setdefault(f"uv {compiled} {cold}", []).append(seconds)
            found = re.search(r"Installed (\d+) packages", text)
            out["packages"] = int(found.group(1)) if found else out["packages"]
print(json.dumps(out))
"""


def install_figures(client: docker.DockerClient, image: str, requirements: str, rounds: int) -> dict:
    """INSTALL_DRIVER's figures for this requirements text, in a container of the image."""
    # The runtime's interpreter by path: `python` on PATH is the project environment's.
    command = ["/opt/unstuck/venv/bin/python", "-c", INSTALL_DRIVER, requirements, str(rounds)]
    container = client.containers.run(image, command, detach=True, labels={LABEL: SESSION})
    try:
        code = container.wait(timeout=3600)["StatusCode"]
        logs = container.logs().decode(errors="replace")
    finally:
        container.remove(force=True)
    if code != 0:
        raise SystemExit(f"bench: the install section failed: {logs[-3000:]}")
    return json.loads(logs.strip().splitlines()[-1])


def bench_shapes(client: docker.DockerClient, image: str, rounds: int) -> str:
    """Each project shape's framework (tests/shapes.py) installed in place, pip vs uv: what a user of
    that shape waits for at the first start and after adding a dependency."""
    from shapes import SHAPES

    by_framework: dict[str, list[str]] = {}
    for name, shape in sorted(SHAPES.items()):
        by_framework.setdefault(shape.framework, []).append(name)
    lines = [f"in-place install of each project shape's framework, no bytecode (median of {rounds}):",
             f"  {'shape':34} {'framework':20} {'packages':>8} {'pip':>7} {'uv cold':>8} {'uv warm':>8} {'pip/uv':>7}"]
    for framework, names in by_framework.items():
        result = install_figures(client, image, framework + "\n", rounds)
        pip = statistics.median(result["pip False"])
        cold = statistics.median(result["uv False True"])
        warm = statistics.median(result["uv False False"])
        lines.append(f"  {', '.join(names):34} {framework:20} {result['packages']:>8} {pip:>6.2f}s {cold:>7.2f}s "
                     f"{warm:>7.2f}s {pip / cold:>6.1f}x")
        print(lines[-1], flush=True)
    return "\n".join(lines)


def bench_install(client: docker.DockerClient, image: str, rounds: int) -> str:
    requirements = (HERE / "install-requirements.txt").read_text()
    result = install_figures(client, image, requirements, rounds)
    top = [line for line in requirements.splitlines() if line and not line.startswith("#")]
    lines = [f"dependency install into a fresh environment, in a container ({len(top)} pinned requirements, "
             f"{result['packages']} packages; median of {rounds}):",
             f"  {'':52} {'seconds':>8} {'vs pip':>7} {'vs before':>10}"]
    before = statistics.median(result["pip True"])  # pip, bytecode compiled: how unstuck installed in place
    titles = {True: "bytecode compiled by the install (pip's default; `unstuck deps`, image build)",
              False: "no bytecode compiled (in place: unstuck compiles it afterwards, in the background)"}
    for compiled, title in titles.items():
        pip = statistics.median(result[f"pip {compiled}"])
        lines.append(f"  {title}:")
        lines.append(f"    {'pip ' + result['pip_version'] + ', no cache':50} {pip:>8.2f} {'':>7} {before / pip:>9.1f}x")
        for cold, cache in ((True, "cold cache"), (False, "warm cache")):
            seconds = statistics.median(result[f"uv {compiled} {cold}"])
            name = f"uv {result['uv_version']}, {cache}"
            lines.append(f"    {name:50} {seconds:>8.2f} {pip / seconds:>6.1f}x {before / seconds:>9.1f}x")
    return "\n".join(lines)


def report(name: str, edits: int, reloads: int, think: float, result: dict) -> str:
    u, v = result["unstuck"], result["uvicorn"]
    rows = [
        (f"save->served p50 ({edits} edits, {think:g} s apart)", f"{u['p50']:.3f} s", f"{v['p50']:.3f} s",
         f"{u['p50'] / v['p50']:.2f}"),
        ("save->served p95", f"{u['p95']:.3f} s", f"{v['p95']:.3f} s", f"{u['p95'] / v['p95']:.2f}"),
        ("rapid saves (each as the last is served) p50", f"{u['rapid']:.3f} s", f"{v['rapid']:.3f} s",
         f"{u['rapid'] / v['rapid']:.2f}"),
        ("fix after broken -> served p50", f"{u['fix']:.3f} s", f"{v['fix']:.3f} s", f"{u['fix'] / v['fix']:.2f}"),
        (f"failed requests across {reloads} reloads", f"{u['failed']}/{u['requests']}",
         f"{v['failed']}/{v['requests']}", ""),
        ("container start -> first 200", f"{u['cold']:.2f} s", f"{v['cold']:.2f} s", f"{u['cold'] / v['cold']:.2f}"),
        ("idle CPU, file watcher process", f"{u['watcher_cpu'] * 100:.2f} %", f"{v['watcher_cpu'] * 100:.2f} %", ""),
        ("idle CPU, whole container", f"{u['idle_cpu'] * 100:.2f} %", f"{v['idle_cpu'] * 100:.2f} %", ""),
    ]
    for key, when in (("first", f"{think:g} s after the first 200"), ("first_at_once", "at once")):
        first = u.get(key)
        if first:
            rows += [(f"first reload, new container, {when} (vs p50)", f"{first['fresh']:.3f} s", "",
                      f"{first['fresh'] / u['p50']:.2f}"),
                     (f"first reload after a restart, {when} (vs p50)", f"{first['restarted']:.3f} s", "",
                      f"{first['restarted'] / u['p50']:.2f}")]
    lines = [f"app: {name}", f"  {'':58} {'unstuck':>12} {'uvicorn':>12} {'ratio':>6}"]
    lines += [f"  {a:58} {b:>12} {c:>12} {d:>6}" for a, b, c, d in rows]
    phases = u.get("phases")
    if phases:
        lines.append("  unstuck reload phases, median s after the save: "
                     + "  ".join(f"{k} {v:.3f}" for k, v in phases.items()))
    return "\n".join(lines)


def build(client: docker.DockerClient, path: Path, tag: str, buildargs: dict) -> str:
    try:
        image, _ = client.images.build(path=str(path), buildargs=buildargs, tag=tag, labels={LABEL: SESSION},
                                       rm=True, forcerm=True)
    except docker.errors.BuildError as exc:
        raise SystemExit(f"bench: building {path.name} failed: {exc}") from None
    return image.id


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edits", type=int, default=30, help="timed edits per reloader and app (default 30)")
    parser.add_argument("--reloads", type=int, default=100, help="reloads under traffic (default 100)")
    parser.add_argument("--think", type=float, default=1.0,
                        help="seconds between an answer and the next timed save (default 1)")
    parser.add_argument("--apps", default="tiny,heavy,realistic",
                        help="which apps: tiny, heavy, realistic (default all three)")
    parser.add_argument("--tree-files", type=int, default=10000, help="files in the polling tree (0: skip)")
    parser.add_argument("--only", help="comma-separated sections to run: apps, polling, shares, watcher, install, "
                                       "shapes (default: all of these), realworld (large public projects: only when named)")
    parser.add_argument("--watcher-trees", default="10000,100000", help="tree sizes for the watcher section")
    parser.add_argument("--install-rounds", type=int, default=3, help="rounds of the install section (0: skip)")
    parser.add_argument("--projects", default="bakerydemo,healthchecks,mealie",
                        help="the realworld section's projects (tests/realworld_projects.py)")
    parser.add_argument("--realworld-edits", type=int, default=10, help="leaf edits per server and project")
    parser.add_argument("--realworld-think", type=float, default=1.5,
                        help="seconds between an answer and the next save in the realworld section (default 1.5)")
    args = parser.parse_args()
    all_sections = {"apps", "polling", "shares", "watcher", "install", "shapes"}
    # Not run by default: it clones three large public projects (or takes REALWORLD_SRC) and installs them.
    sections = set(args.only.split(",")) if args.only else all_sections
    unknown = sections - all_sections - {"realworld"}
    if unknown:
        parser.error(f"--only: unknown section(s) {', '.join(sorted(unknown))}; use {', '.join(sorted(all_sections | {'realworld'}))}")
    base = os.environ.get("BASE_IMAGE") or default_base_image()
    client = docker.from_env()
    tags = [f"unstuck-bench:{SESSION}", f"unstuck-bench-heavy:{SESSION}"]
    workdir = Path(tempfile.mkdtemp(prefix="unstuck-bench-"))
    bench = None
    bench_containers: list = []  # the realworld section's, removed even when it fails
    try:
        if sections == {"realworld"}:  # each project builds the image on its own base
            from realworld import bench_realworld
            bench_realworld(client, workdir, tags, bench_containers, [n for n in args.projects.split(",") if n],
                            args.realworld_edits, args.realworld_think)  # prints each project's table
            return 0
        print(f"building the image (BASE_IMAGE={base}) ...", flush=True)
        image = build(client, REPO, tags[0], {"BASE_IMAGE": base})
        if sections & {"apps", "polling"}:
            print("building the bench extras ...", flush=True)
            bench_image = build(client, HERE, tags[1], {"IMAGE": image})
        else:
            bench_image = image
        bench = Bench(client, bench_image, workdir)
        apps = {"tiny": HERE / "tiny_app", "heavy": HERE / "heavy_app", "realistic": HERE / "realistic_app"}
        if "apps" in sections:
            for name in filter(None, args.apps.split(",")):
                if name not in apps:
                    parser.error(f"--apps: unknown app {name!r}; use {', '.join(apps)}")
                print(f"measuring {name} ...", flush=True)
                result = bench_app(bench, name, apps[name], args.edits, args.reloads, args.think)
                print(report(name, args.edits, args.reloads, args.think, result), flush=True)
        if "polling" in sections and args.tree_files:
            print(bench_polling(bench, args.tree_files), flush=True)
        if "shares" in sections:
            print("measuring a Docker Desktop share (FUSE view) ...", flush=True)
            print(bench_shares(bench, min(args.edits, 10), args.think, args.tree_files or 10000), flush=True)
        if "watcher" in sections:
            print(bench_watcher(bench, [int(n) for n in args.watcher_trees.split(",") if n]), flush=True)
        if "install" in sections and args.install_rounds:
            print("measuring dependency installs ...", flush=True)
            print(bench_install(client, image, max(1, args.install_rounds)), flush=True)
        if "realworld" in sections:
            from realworld import bench_realworld
            bench_realworld(client, workdir, tags, bench_containers, [n for n in args.projects.split(",") if n],
                            args.realworld_edits, args.realworld_think)  # prints each project's table
        if "shapes" in sections and args.install_rounds:
            print("measuring each project shape's install ...", flush=True)
            print(bench_shapes(client, image, max(1, args.install_rounds)), flush=True)
    finally:
        if bench is not None:
            bench.cleanup()
        for container in bench_containers:
            try:
                container.remove(force=True)
            except docker.errors.APIError:
                pass
        for volume in client.volumes.list(filters={"label": f"{LABEL}={SESSION}"}):
            try:
                volume.remove(force=True)
            except docker.errors.APIError:
                pass
        for tag in tags:
            try:
                client.images.remove(tag, force=True)
            except docker.errors.APIError:
                pass
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
