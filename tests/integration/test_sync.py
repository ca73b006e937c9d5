"""Code that arrives by copying, not through a bind mount: `tar x` streamed through `docker exec -i` (what
kubectl cp, Tilt's live_update and Skaffold's sync do) into the image's own /workspace/app, and
`docker compose watch` with compose.sync.yaml. Each change must be served with exactly one reload."""

from __future__ import annotations

import io
import os
import shutil
import signal
import statistics
import subprocess
import tarfile
import threading
import uuid
from pathlib import Path

import pytest

from containers import LABEL, SESSION, Served, free_port, readable_copy, remove_all
from editor import save_in_place
from repo import RECOVERIES, REPO
from sync_examples import NOISE_DIRS, NOISE_FILES
from waiting import has_text, wait_for, wait_until

ORIGINAL = "Hello from unstuck"
MAIN = (REPO / "app" / "main.py").read_text()
PIP_TIMEOUT = 180


def counts(served: Served) -> tuple[int, int]:
    """(reloads completed, reloads started on part of a copy and abandoned when the rest arrived): one
    copy must start exactly one reload, so both are counted (from `unstuck status --json`)."""
    counters = served.status().get("counters", {})
    return counters.get("reloads", 0), counters.get("superseded", 0)


def reload_count(served: Served) -> int:
    return counts(served)[0]


def main_saying(message_expr: str, prelude: str = "") -> str:
    """The sample app's main.py with its message replaced by a Python expression."""
    return prelude + MAIN.replace(f'"{ORIGINAL}"', message_expr)


def burst(app_dir: Path, count: int) -> str:
    """Write `count` modules into app/generated and a main.py that imports them all; return the text the
    app then serves."""
    generated = app_dir / "generated"
    generated.mkdir()
    (generated / "__init__.py").write_text("")
    for i in range(count):
        (generated / f"mod_{i}.py").write_text(f"VALUE = {i}\n")
    prelude = ("import importlib\n"
               f"TOTAL = sum(importlib.import_module(f'app.generated.mod_{{i}}').VALUE for i in range({count}))\n")
    (app_dir / "main.py").write_text(main_saying('f"burst total {TOTAL}"', prelude))
    return f"burst total {sum(range(count))}"


# -- tar through docker exec, into a container without a bind mount --------------------------------------


def copy_in(served: Served, paths: list[str], delete: tuple[str, ...] = ()) -> None:
    """Copy files from the host copy of the app the way kubectl cp and Skaffold do: a tar streamed into
    `tar xmf - -C /workspace/app` run in the container as its own user, after removing `delete`."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        for rel in paths:
            tar.add(served.app_dir / rel, arcname=rel)
    extract = ["tar", "xmf", "-", "-C", "/workspace/app"]
    if delete:  # one exec, so the removal and the copy reach the watcher as one change
        extract = ["sh", "-c", 'cd /workspace/app && rm -rf -- "$@" && exec tar xmf - -C /workspace/app', "sh",
                   *delete]
    result = subprocess.run(["docker", "exec", "-i", served.container.id, *extract], input=data.getvalue(),
                            capture_output=True, timeout=60)
    assert result.returncode == 0, f"tar into the container failed: {result.stderr.decode(errors='replace')}"


@pytest.fixture
def start_unmounted(docker_client, image, tmp_path):
    """start_unmounted() -> Served: the image run with no volume at all, serving its own copy of the app;
    `app_dir` is a host copy of the same app that tests edit and then copy in."""
    started = []

    def start() -> Served:
        host_copy = tmp_path / f"host{len(started)}" / "app"
        readable_copy(REPO / "app", host_copy)
        port = free_port()
        container = docker_client.containers.run(
            image.id, detach=True, labels={LABEL: SESSION}, ports={"8000/tcp": ("127.0.0.1", port)},
            name=f"unstuck-test-{SESSION}-{uuid.uuid4().hex[:6]}")
        started.append(container)
        served = Served(container, port, host_copy)
        wait_for(served.url(), has_text(200, ORIGINAL), on_timeout=served.logs_tail)
        return served

    yield start
    remove_all(started)


def then_one_more_edit_is_the_next_reload(served: Served, before: int, deliver) -> None:
    """A sentinel edit after the change under test: its reload must be number before + 2, so the change
    caused exactly one reload and nothing came late."""
    (served.app_dir / "main.py").write_text(main_saying('"sentinel edit"'))
    deliver()
    wait_for(served.url(), has_text(200, "sentinel edit"), on_timeout=served.logs_tail)
    assert reload_count(served) == before + 2, served.logs_tail()


def test_tar_copy_is_written_as_the_images_user_and_served_with_one_reload(start_unmounted):
    served = start_unmounted()
    served.container.reload()
    assert served.container.attrs["Mounts"] == []  # the image's own /workspace/app, nothing mounted
    before, abandoned = counts(served)
    (served.app_dir / "main.py").write_text(main_saying('"copied by tar"'))
    copy_in(served, ["main.py"])
    wait_for(served.url(), has_text(200, "copied by tar"), on_timeout=served.logs_tail)
    assert counts(served) == (before + 1, abandoned), served.logs_tail()
    assert served.exec("stat", "-c", "%u", "/workspace/app/main.py") == (0, "1000\n")
    then_one_more_edit_is_the_next_reload(served, before, lambda: copy_in(served, ["main.py"]))


def test_tar_of_500_files_is_served_with_one_reload(start_unmounted):
    served = start_unmounted()
    before, abandoned = counts(served)
    expected = burst(served.app_dir, 500)
    copy_in(served, ["generated", "main.py"])
    wait_for(served.url(), has_text(200, expected), timeout=60, on_timeout=served.logs_tail)
    assert counts(served) == (before + 1, abandoned), served.logs_tail()
    then_one_more_edit_is_the_next_reload(served, before, lambda: copy_in(served, ["main.py"]))


def test_tar_removing_a_module_and_its_import_is_served_with_one_reload(start_unmounted):
    served = start_unmounted()
    (served.app_dir / "helper.py").write_text('GREETING = "helper module"\n')
    (served.app_dir / "main.py").write_text(main_saying("GREETING", "from app.helper import GREETING\n"))
    copy_in(served, ["helper.py", "main.py"])
    wait_for(served.url(), has_text(200, "helper module"), on_timeout=served.logs_tail)

    before, abandoned = counts(served)
    (served.app_dir / "helper.py").unlink()
    (served.app_dir / "main.py").write_text(main_saying('"helper removed"'))
    copy_in(served, ["main.py"], delete=("helper.py",))
    wait_for(served.url(), has_text(200, "helper removed"), on_timeout=served.logs_tail)
    assert counts(served) == (before + 1, abandoned), served.logs_tail()
    assert served.exec("test", "-e", "/workspace/app/helper.py")[0] == 1
    assert "app broken" not in served.logs(), served.logs_tail()  # the removal alone was never served
    then_one_more_edit_is_the_next_reload(served, before, lambda: copy_in(served, ["main.py"]))


def test_dockerignore_keeps_the_watchers_noise_out_of_the_image(docker_client, base_image, tmp_path):
    """The engine's own .dockerignore matching (what Compose Watch, Tilt and Skaffold also read), with the
    noise at the top of app/ and one directory down."""
    context = tmp_path / "context"
    for rel in ["app/main.py", "app/data.csv", "app/pkg/data.csv",
                *(f"{top}{rel}" for top in ("app/", "app/pkg/") for rel in [*NOISE_DIRS, *NOISE_FILES])]:
        (context / rel).parent.mkdir(parents=True, exist_ok=True)
        (context / rel).write_text("x\n")
    shutil.copy(REPO / ".dockerignore", context / ".dockerignore")
    (context / "Dockerfile").write_text(f"FROM {base_image}\nCOPY app/ /ctx/\n")
    built, _ = docker_client.images.build(path=str(context), labels={LABEL: SESSION}, rm=True, forcerm=True)
    try:
        listing = docker_client.containers.run(built.id, ["find", "/ctx", "-type", "f"], remove=True,
                                               labels={LABEL: SESSION}).decode()
    finally:
        docker_client.images.remove(built.id, force=True)
    assert sorted(listing.split()) == ["/ctx/data.csv", "/ctx/main.py", "/ctx/pkg/data.csv"]


# -- docker compose watch, with compose.sync.yaml: no bind mount -----------------------------------------

PROJECT_FILES = ["Dockerfile", ".dockerignore", "compose.yaml", "compose.sync.yaml", "entrypoint"]
SYNC_FILES = ["-f", "compose.yaml", "-f", "compose.sync.yaml"]


class Project:
    """A compose project on a fresh copy of the repo, on free ports; `down -v --rmi local` when closed."""

    def __init__(self, root: Path, name: str, base_image: str, files: list[str]) -> None:
        self.dir = root
        root.mkdir(parents=True)
        for rel in PROJECT_FILES:
            src = REPO / rel
            (shutil.copytree if src.is_dir() else shutil.copy)(src, root / rel)
        readable_copy(REPO / "app", root / "app")
        self.name, self.files, self.port = name, files, free_port()
        self.env = {**os.environ, "BASE_IMAGE": base_image, "UNSTUCK_PORT": str(self.port),
                    "UNSTUCK_DEBUG_PORT": str(free_port())}

    def command(self, *args: str) -> list[str]:
        return ["docker", "compose", "--project-name", self.name, *self.files, *args]

    def run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run(self.command(*args), cwd=self.dir, env=self.env, capture_output=True, text=True,
                              timeout=timeout)

    def up(self, docker_client) -> Served:
        up = self.run("up", "--detach", "--build", "--wait", "--wait-timeout", "180", timeout=600)
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
        [container] = docker_client.containers.list(filters={"label": f"com.docker.compose.project={self.name}"})
        return Served(container, self.port, self.dir / "app")

    def down(self) -> None:
        self.run("down", "--volumes", "--rmi", "local", "--remove-orphans", "--timeout", "5")


class Watch:
    """`docker compose watch` in its own process group, its output collected by a thread."""

    def __init__(self, project: Project) -> None:
        self.proc = subprocess.Popen(project.command("watch"), cwd=project.dir, env=project.env, text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        self.lines: list[str] = []
        threading.Thread(target=lambda: self.lines.extend(self.proc.stdout), daemon=True).start()

    def output(self) -> str:
        return "".join(self.lines)

    def tail(self, lines: int = 15) -> str:
        return "compose watch output (tail):\n" + "".join(self.lines[-lines:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


@pytest.fixture(scope="module")
def watched(tmp_path_factory, base_image, docker_client):
    """(served, watch): the compose service up with compose.sync.yaml, `docker compose watch` running."""
    project = Project(tmp_path_factory.mktemp("sync") / "repo", f"unstuck-sync-{SESSION}", base_image, SYNC_FILES)
    watch = None
    try:
        served = project.up(docker_client)
        watch = Watch(project)
        wait_until("compose watch is watching", lambda: ("Watch enabled" in watch.output(), watch.tail()),
                   timeout=180)
        yield served, watch
    finally:
        if watch is not None:
            watch.stop()
        project.down()


def logs_and_watch(served: Served, watch: Watch):
    return lambda: served.logs_tail() + "\n" + watch.tail()


def save_main(served: Served, message_expr: str, prelude: str = "") -> None:
    save_in_place(served.app_dir / "main.py", main_saying(message_expr, prelude))


def test_compose_watch_serves_an_edit_without_a_bind_mount(watched):
    served, watch = watched
    served.container.reload()
    assert served.container.attrs["Mounts"] == []
    before, abandoned = counts(served)
    save_main(served, '"synced by compose watch"')
    wait_for(served.url(), has_text(200, "synced by compose watch"), on_timeout=logs_and_watch(served, watch))
    assert counts(served) == (before + 1, abandoned), served.logs_tail()
    assert 'Syncing service "app"' in watch.output()


def test_compose_watch_shows_a_broken_save_then_serves_the_fix(watched):
    served, watch = watched
    save_in_place(served.app_dir / "main.py", MAIN + "\ndef broken(:\n")
    _, response = wait_for(served.url(), lambda r: r.status_code == 503, on_timeout=logs_and_watch(served, watch))
    assert "SyntaxError" in response.text and "app/main.py" in response.text, response.text[:500]
    save_main(served, '"fixed through compose watch"')
    wait_for(served.url(), has_text(200, "fixed through compose watch"), on_timeout=logs_and_watch(served, watch))


def test_compose_watch_never_copies_what_the_watcher_ignores(watched):
    served, watch = watched
    for rel in ["data.csv", *NOISE_DIRS, *NOISE_FILES]:
        (served.app_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        (served.app_dir / rel).write_text("x\n")
    save_main(served, '"after the noise"')  # synced after (or with) everything written before it
    wait_for(served.url(), has_text(200, "after the noise"), on_timeout=logs_and_watch(served, watch))
    wait_until("data.csv is synced", lambda: (served.exec("test", "-f", "/workspace/app/data.csv")[0] == 0,
                                              watch.tail()))
    _, arrived = served.exec("sh", "-c", "cd /workspace/app && ls -d " + " ".join(
        f"'{rel.split('/')[0]}'" for rel in [*NOISE_DIRS, *NOISE_FILES]) + " 2>/dev/null")
    assert arrived.split() == [], f"copied although ignored: {arrived.split()}"


def test_compose_watch_installs_an_added_dependency_in_place(watched):
    served, watch = watched
    requirements = served.app_dir / "requirements.txt"
    save_in_place(requirements, requirements.read_text() + "six==1.16.0\n")
    wait_until("pip installs the synced requirement",
               lambda: ("dependencies installed from app/requirements.txt" in served.logs(), served.logs_tail(8)),
               timeout=PIP_TIMEOUT)
    save_main(served, 'f"six {six.__version__}"', "import six\n")
    wait_for(served.url(), has_text(200, "six 1.16.0"), on_timeout=logs_and_watch(served, watch))


def test_compose_watch_sync_of_300_files_is_one_reload(watched):
    served, watch = watched
    before, abandoned = counts(served)
    expected = burst(served.app_dir, 300)
    wait_for(served.url(), has_text(200, expected), timeout=60, on_timeout=logs_and_watch(served, watch))
    assert counts(served) == (before + 1, abandoned), served.logs_tail() + "\n" + watch.tail()
    then_one_more_edit_is_the_next_reload(served, before, lambda: None)


EDITS = 7


def save_to_served(served: Served, label: str, on_timeout) -> list[float]:
    seconds = []
    for i in range(EDITS):
        marker = f"{label} edit {i}"
        save_main(served, f'"{marker}"')
        waited, _ = wait_for(served.url(), has_text(200, marker), on_timeout=on_timeout)
        seconds.append(waited)
    return seconds


def test_save_to_served_compose_watch_sync_against_the_bind_mount(watched, tmp_path, base_image, docker_client):
    """Both measured in the same run and reported in the summary; no timing is asserted (shared cores)."""
    served, watch = watched
    synced = save_to_served(served, "synced", logs_and_watch(served, watch))
    bind = Project(tmp_path / "repo", f"unstuck-bind-{SESSION}", base_image, ["-f", "compose.yaml"])
    try:
        mounted = bind.up(docker_client)
        wait_for(mounted.url(), has_text(200, ORIGINAL), on_timeout=mounted.logs_tail)
        mounted_seconds = save_to_served(mounted, "mounted", mounted.logs_tail)
    finally:
        bind.down()
    RECOVERIES.append((f"save -> served p50 of {EDITS}, compose watch sync", statistics.median(synced)))
    RECOVERIES.append((f"save -> served p50 of {EDITS}, bind mount", statistics.median(mounted_seconds)))
    print(f"compose watch sync: {[round(s, 3) for s in synced]}; bind mount: {[round(s, 3) for s in mounted_seconds]}")
