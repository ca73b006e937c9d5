"""The opt-in stack on a copy of the repo, as the README runs it:
`docker compose -f compose.yaml -f compose.stack.yaml up`: Postgres and Redis beside the app, the sample's
job worker from app/Procfile, a job's round trip through the queue and the database, and what a developer
does to a running stack (restart Postgres, `down` then `up`, edit the task, break it, kill the worker).

The service images are POSTGRES_IMAGE and REDIS_IMAGE (compose.stack.yaml's pinned official images by
default; .ci/run points them at local stand-ins where no registry is reachable). Every compose project has a
unique name and is removed with its volumes and built image even when a test fails.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from containers import SESSION, free_port, readable_copy, status_answer
from editor import save_in_place
from repo import RECOVERIES, REPO
from waiting import wait_for, wait_until

PROJECT_FILES = ["Dockerfile", ".dockerignore", "compose.yaml", "compose.stack.yaml", "entrypoint"]
STACK_FILES = ["-f", "compose.yaml", "-f", "compose.stack.yaml"]
HAND_WORKER_PID = "/tmp/unstuck-test-worker.pid"
HAND_WORKER_LOG = "/tmp/unstuck-test-worker.log"
TASKS = Path("app/jobs/tasks.py")


def compose_default(variable: str) -> str:
    """The image compose.stack.yaml uses when `variable` is unset."""
    return re.search(r"\$\{" + variable + r":-([^}]+)\}", (REPO / "compose.stack.yaml").read_text()).group(1)


@dataclass
class Stack:
    dir: Path
    name: str
    env: dict
    port: int

    def compose(self, *args: str, timeout: float = 300, files: list[str] = STACK_FILES) -> subprocess.CompletedProcess:
        return subprocess.run(["docker", "compose", "--project-name", self.name, *files, *args], cwd=self.dir,
                              env=self.env, capture_output=True, text=True, timeout=timeout)

    def ok(self, *args: str, timeout: float = 300) -> str:
        result = self.compose(*args, timeout=timeout)
        assert result.returncode == 0, f"docker compose {' '.join(args)} failed:\n{result.stdout}{result.stderr}\n{self.logs()}"
        return result.stdout

    def exec(self, service: str, *cmd: str) -> subprocess.CompletedProcess:
        return self.compose("exec", "-T", service, *cmd, timeout=60)

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def logs(self) -> str:
        tail = self.compose("logs", "--no-color", "--timestamps", "--tail", "80", timeout=60).stdout
        worker = self.exec("app", "sh", "-c", f"tail -n 40 {HAND_WORKER_LOG} 2>/dev/null").stdout
        status = self.exec("app", "unstuck", "status").stdout
        return f"compose logs (tail):\n{tail}\nworker started by hand (tail):\n{worker}\nunstuck status:\n{status}"

    def status(self) -> dict | None:
        """`unstuck status --json` in the app container (None while it cannot answer)."""
        def ask() -> tuple[int, str]:
            result = self.exec("app", "unstuck", "status", "--json")
            return result.returncode, result.stdout

        _, out = status_answer(ask)  # asked again while Docker loses the output (containers.py)
        try:
            return json.loads(out)
        except ValueError:
            return None

    def supervised_worker(self) -> dict | None:
        """The worker as unstuck's status reports it, when unstuck runs app/Procfile's entries."""
        return ((self.status() or {}).get("procs") or {}).get("worker")

    def hand_worker_pid(self) -> int | None:
        result = self.exec("app", "sh", "-c", f'pid=$(cat {HAND_WORKER_PID}) && [ -d /proc/"$pid" ] && echo "$pid"')
        return int(result.stdout) if result.returncode == 0 and result.stdout.strip() else None

    def worker_pid(self) -> int:
        """The worker's pid: the one unstuck supervises or, until unstuck runs Procfile entries, one started
        by hand with app/Procfile's command (again after `down`/`up`)."""
        supervised = self.supervised_worker()
        if supervised is not None:
            wait_until("the supervised worker runs", lambda: (
                (w := self.supervised_worker() or {}).get("state") == "running", str(w)), timeout=60)
            return int(self.supervised_worker()["worker_pid"])
        pid = self.hand_worker_pid()
        if pid is None:
            command = procfile_command(self.dir / "app" / "Procfile", "worker")
            started = self.compose("exec", "-d", "-T", "app", "sh", "-c",
                                   f"echo $$ > {HAND_WORKER_PID}; exec {command} >>{HAND_WORKER_LOG} 2>&1", timeout=60)
            assert started.returncode == 0, started.stderr
            wait_until("the worker started by hand listens on its queue", lambda: (
                "Listening on" in (log := self.exec("app", "cat", HAND_WORKER_LOG).stdout), log[-2000:]), timeout=60)
            pid = self.hand_worker_pid()
        assert pid is not None, self.logs()
        return pid

    def worker_alive(self, pid: int) -> bool:
        return self.exec("app", "test", "-d", f"/proc/{pid}").returncode == 0

    def post_job(self, text: str, delay: float = 0) -> str:
        try:
            response = httpx.post(self.url("/jobs"), json={"text": text, "delay": delay}, timeout=10)
        except httpx.HTTPError as exc:
            pytest.fail(f"POST /jobs: {type(exc).__name__}: {exc}\n{self.logs()}", pytrace=False)
        assert response.status_code == 202, f"{response.status_code}: {response.text}\n{self.logs()}"
        return response.json()["id"]

    def wait_finished(self, job_id: str, timeout: float = 60) -> tuple[float, dict]:
        waited, response = wait_for(self.url(f"/jobs/{job_id}"),
                                    lambda r: r.status_code == 200 and r.json()["status"] in ("finished", "failed"),
                                    timeout=timeout, on_timeout=self.logs)
        return waited, response.json()

    def redis_job_field(self, job_id: str, field: str) -> str:
        return self.exec("redis", "redis-cli", "HGET", f"rq:job:{job_id}", field).stdout.strip()

    def container(self, service: str) -> dict:
        container_id = self.ok("ps", "-q", service).strip()
        out = subprocess.run(["docker", "inspect", container_id], capture_output=True, text=True, check=True).stdout
        return json.loads(out)[0]


def procfile_command(procfile: Path, name: str) -> str:
    for line in procfile.read_text().splitlines():
        if line.startswith(f"{name}:"):
            return line.split(":", 1)[1].strip()
    raise AssertionError(f"{procfile} has no {name!r} entry")


def service_images() -> dict:
    """POSTGRES_IMAGE and REDIS_IMAGE, which must exist locally or be pullable: say how to get them if not."""
    images = {}
    for variable in ("POSTGRES_IMAGE", "REDIS_IMAGE"):
        image = os.environ.get(variable) or compose_default(variable)
        if subprocess.run(["docker", "image", "inspect", image], capture_output=True).returncode != 0:
            pulled = subprocess.run(["docker", "pull", "-q", image], capture_output=True, text=True, timeout=300)
            if pulled.returncode != 0:
                pytest.fail(f"{variable}={image} is not here and cannot be pulled ({pulled.stderr.strip()}); "
                            "build local stand-ins with .ci/build-local-service-images and set POSTGRES_IMAGE and "
                            "REDIS_IMAGE to them, as .ci/run does", pytrace=False)
        images[variable] = image
    return images


def remove_project(stack: Stack) -> None:
    stack.compose("down", "--volumes", "--rmi", "local", "--remove-orphans", "--timeout", "5", timeout=180)
    # Anything `down` left (it failed, or timed out) goes by the project's own label; nothing else is touched.
    label = f"label=com.docker.compose.project={stack.name}"
    for kind, ls, rm in (("container", ["ps", "-aq"], ["rm", "-f"]), ("volume", ["volume", "ls", "-q"], ["volume", "rm", "-f"]),
                         ("network", ["network", "ls", "-q"], ["network", "rm"])):
        left = subprocess.run(["docker", *ls, "--filter", label], capture_output=True, text=True).stdout.split()
        if left:
            subprocess.run(["docker", *rm, *left], capture_output=True)


@pytest.fixture(scope="module")
def stack(tmp_path_factory, base_image, docker_client):
    project_dir = tmp_path_factory.mktemp("stack") / "repo"
    project_dir.mkdir()
    for name in PROJECT_FILES:
        src = REPO / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, project_dir / name)
    readable_copy(REPO / "app", project_dir / "app")
    port = free_port()
    env = {**os.environ, **service_images(), "BASE_IMAGE": base_image, "UNSTUCK_PORT": str(port),
           "UNSTUCK_DEBUG_PORT": str(free_port())}
    stack = Stack(project_dir, f"unstuck-test-{SESSION}-stack", env, port)
    try:
        stack.ok("up", "--detach", "--build", "--wait", "--wait-timeout", "180", timeout=600)
        yield stack
    finally:
        remove_project(stack)


def test_plain_compose_is_still_the_app_alone_and_the_stack_adds_unpublished_services():
    env = {k: v for k, v in os.environ.items() if k not in ("POSTGRES_IMAGE", "REDIS_IMAGE", "UNSTUCK_PROCFILE")}

    def config(*files: str) -> dict:
        result = subprocess.run(["docker", "compose", *files, "config", "--format", "json"], cwd=REPO, env=env,
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    plain = config()
    assert set(plain["services"]) == {"app"}
    assert not {"DATABASE_URL", "REDIS_URL", "UNSTUCK_PROCFILE"} & set(plain["services"]["app"]["environment"])

    full = config(*STACK_FILES)
    assert set(full["services"]) == {"app", "db", "redis"}
    app = full["services"]["app"]
    assert app["environment"]["UNSTUCK_PROCFILE"] == "/workspace/app/Procfile"
    assert {name: dep["condition"] for name, dep in app["depends_on"].items()} == {
        "db": "service_healthy", "redis": "service_healthy"}
    # Pinned official images, reachable from the app only, data in named volumes.
    assert re.fullmatch(r"postgres:\d+\.\d+-\w+", full["services"]["db"]["image"])
    assert re.fullmatch(r"redis:\d+\.\d+\.\d+-\w+", full["services"]["redis"]["image"])
    for service in ("db", "redis"):
        assert not full["services"][service].get("ports"), service
        assert full["services"][service]["volumes"][0]["type"] == "volume", service


def test_a_job_runs_end_to_end(stack):
    stack.worker_pid()
    # The first job includes the web app's first import of the queue and database clients.
    for which, text, words in (("first", "the quick brown fox", 4), ("next", "jumps over", 2)):
        started = time.monotonic()
        _, job = stack.wait_finished(stack.post_job(text))
        round_trip = time.monotonic() - started
        assert (job["status"], job["result"], job["attempts"]) == ("finished", {"words": words}, 1), job
        RECOVERIES.append((f"stack: {which} job's round trip, POST /jobs to GET /jobs/{{id}} finished", round_trip))

    missing = httpx.get(stack.url("/jobs/00000000-0000-0000-0000-000000000000"), timeout=10)
    assert missing.status_code == 404
    # Postgres and Redis publish no port on the host.
    for service in ("db", "redis"):
        assert not any(stack.container(service)["NetworkSettings"]["Ports"].get(p) for p in ("5432/tcp", "6379/tcp"))


def test_a_postgres_restart_is_survived_by_the_app_and_the_worker(stack):
    worker = stack.worker_pid()
    app_started = stack.container("app")["State"]["StartedAt"]
    before = stack.post_job("written before the restart")
    stack.wait_finished(before)

    started = time.monotonic()
    stack.ok("restart", "db", timeout=120)
    # The app reconnects by itself: the job written before the restart is served again.
    wait_for(stack.url(f"/jobs/{before}"), lambda r: r.status_code == 200, timeout=60, on_timeout=stack.logs)
    RECOVERIES.append(("stack: `docker compose restart db` to the app serving a job again", time.monotonic() - started))

    # And the worker runs the next job: same process, nothing restarted, no crash loop.
    _, job = stack.wait_finished(stack.post_job("written after the restart"))
    assert job["status"] == "finished", job
    assert stack.worker_pid() == worker
    app = stack.container("app")
    assert (app["State"]["StartedAt"], app["RestartCount"]) == (app_started, 0)
    assert stack.status()["state"] == "serving"


def job_written_while_postgres_is_down(stack: Stack) -> dict:
    """A job that records its attempt, works for 6 s, then writes its result while Postgres is stopped:
    the write fails, RQ schedules a retry, Postgres comes back, the retry finishes the job."""
    job_id = stack.post_job("one two three", delay=6)
    wait_for(stack.url(f"/jobs/{job_id}"), lambda r: r.status_code == 200 and r.json()["status"] == "running",
             on_timeout=stack.logs)
    stack.ok("stop", "db", timeout=120)
    wait_until("the job's write failed and a retry is scheduled", lambda: (
        (left := stack.redis_job_field(job_id, "retries_left")) not in ("", "5"), f"retries_left={left!r}"), timeout=60)
    unavailable = httpx.get(stack.url(f"/jobs/{job_id}"), timeout=10)
    assert unavailable.status_code == 503 and "Postgres is unreachable" in unavailable.json()["error"], unavailable.text

    stack.ok("start", "db", timeout=120)
    _, job = stack.wait_finished(job_id, timeout=120)
    assert job["status"] == "finished" and job["result"] == {"words": 3}, job
    assert job["attempts"] >= 2, job
    return job


def test_a_job_whose_write_fails_while_postgres_is_down_is_retried(stack):
    worker = stack.worker_pid()
    job_written_while_postgres_is_down(stack)
    assert stack.worker_alive(worker) and stack.worker_pid() == worker


def test_a_job_out_of_retries_while_postgres_stays_down_fails_cleanly(stack):
    worker = stack.worker_pid()
    job_id = stack.post_job("never written", delay=3)
    wait_for(stack.url(f"/jobs/{job_id}"), lambda r: r.status_code == 200 and r.json()["status"] == "running",
             on_timeout=stack.logs)
    stack.ok("stop", "db", timeout=120)
    # Five retries over about 30 s, all failing: RQ gives the job up.
    wait_until("RQ gave the job up", lambda: (
        (status := stack.redis_job_field(job_id, "status")) == "failed", f"status={status!r}"), timeout=120)
    stack.ok("start", "db", timeout=120)
    # The database could not be told, but the app says so from the queue, with the last error.
    _, job = stack.wait_finished(job_id)
    assert job["status"] == "failed" and job["result"] is None, job
    assert "OperationalError" in job["error"], job
    assert stack.worker_alive(worker) and stack.worker_pid() == worker


def test_a_redis_outage_is_survived_and_retries_still_run(stack):
    worker = stack.worker_pid()
    stack.ok("stop", "redis", timeout=120)
    refused = httpx.post(stack.url("/jobs"), json={"text": "no queue"}, timeout=10)
    assert refused.status_code == 503 and "Redis is unreachable" in refused.json()["error"], refused.text
    stack.ok("start", "redis", timeout=120)
    # The worker reconnects by itself; the scheduler that puts retries back on the queue died with the
    # connection and must be running again too.
    _, job = stack.wait_finished(stack.post_job("queue is back"), timeout=90)
    assert job["status"] == "finished", job
    job_written_while_postgres_is_down(stack)
    assert stack.worker_alive(worker) and stack.worker_pid() == worker


def test_down_then_up_keeps_the_data(stack):
    stack.worker_pid()
    job_id = stack.post_job("kept across down and up")
    _, before = stack.wait_finished(job_id)

    stack.ok("down", "--timeout", "10", timeout=180)
    assert stack.compose("ps", "-aq").stdout.strip() == ""
    stack.ok("up", "--detach", "--wait", "--wait-timeout", "180", timeout=600)

    _, after = stack.wait_finished(job_id)
    assert after == before
    # New jobs run too (the worker is a new process in the new container).
    stack.worker_pid()
    _, job = stack.wait_finished(stack.post_job("after up"))
    assert job["status"] == "finished", job


# Below: what unstuck's Procfile workers add (UNSTUCK_PROCFILE).


def supervised(stack: Stack) -> dict:
    worker = stack.supervised_worker()
    assert worker is not None, f"unstuck status --json reports no 'worker' under 'procs': {stack.status()}"
    return worker


def test_after_a_task_edit_the_next_job_runs_the_new_code(stack):
    before = supervised(stack)["worker_pid"]
    tasks = stack.dir / TASKS
    original = tasks.read_text()
    saved_at = time.monotonic()
    save_in_place(tasks, original.replace('{"words": len(text.split())}', '{"words": len(text.split()), "edited": True}'))
    try:
        # The next job after the save runs the new code: it waits in the queue for the restarted worker.
        _, job = stack.wait_finished(stack.post_job("new code runs"))
        assert job["result"] == {"words": 3, "edited": True}, job
        RECOVERIES.append(("stack: task code saved -> a job posted at once ran the new code", time.monotonic() - saved_at))
        assert supervised(stack)["worker_pid"] != before
    finally:
        save_in_place(tasks, original)


def test_a_broken_task_module_shows_in_status_and_the_fix_brings_the_worker_back(stack):
    supervised(stack)
    tasks = stack.dir / TASKS
    original = tasks.read_text()
    lines = original.splitlines(keepends=True)
    broken_line = next(i for i, line in enumerate(lines, 1) if line.startswith("def count_words"))
    lines[broken_line - 1] = lines[broken_line - 1].replace("-> dict:", "-> dict")  # a missing colon
    save_in_place(tasks, "".join(lines))
    try:
        error = wait_until("the worker's error in unstuck status", lambda: (
            bool((e := supervised(stack).get("last_error")) and e.get("line") == broken_line), str(supervised(stack))),
            timeout=60)
        worker = supervised(stack)
        assert worker["state"] in ("backoff", "starting"), error  # restarted, and crashing, never "running"
        assert worker["last_error"]["file"].endswith(str(TASKS)) and "SyntaxError" in worker["last_error"]["headline"], worker
        # The web app does not import the task code: it keeps serving.
        assert httpx.get(stack.url("/health"), timeout=10).status_code == 200
    finally:
        fixed_at = time.monotonic()
        save_in_place(tasks, original)
    wait_until("the worker runs again after the fix", lambda: (
        (w := supervised(stack))["state"] == "running", str(w)), timeout=60)
    RECOVERIES.append(("stack: worker's SyntaxError fixed -> worker running", time.monotonic() - fixed_at))
    _, job = stack.wait_finished(stack.post_job("fixed"))
    assert job["status"] == "finished", job


def test_a_killed_worker_comes_back_without_a_save(stack):
    wait_until("the worker runs", lambda: (isinstance((w := supervised(stack)).get("worker_pid"), int)
                                           and w["state"] == "running", str(w)), timeout=60)
    before = supervised(stack)
    killed_at = time.monotonic()
    killed = stack.exec("app", "sh", "-c", f"kill -9 {before['worker_pid']}")
    assert killed.returncode == 0, killed.stderr
    wait_until("a new worker runs", lambda: (
        (w := supervised(stack))["worker_pid"] != before["worker_pid"] and w["state"] == "running", str(w)), timeout=60)
    RECOVERIES.append(("stack: worker kill -9 -> worker running (1 s counts as started)", time.monotonic() - killed_at))
    assert supervised(stack)["restarts"] > before["restarts"]
    _, job = stack.wait_finished(stack.post_job("after kill -9"))
    assert job["status"] == "finished", job


def test_stopping_the_app_with_its_worker_running_is_prompt_and_clean(stack):
    supervised(stack)
    _, job = stack.wait_finished(stack.post_job("before the stop"))
    started = time.monotonic()
    stack.ok("stop", "--timeout", "10", "app")
    RECOVERIES.append(("stack: `docker compose stop app` with the worker running: seconds", time.monotonic() - started))
    app = stack.compose("ps", "--all", "--format", "json", "app").stdout
    assert '"ExitCode":0' in app.replace(" ", ""), app  # 137 had it been killed after the timeout
    stack.ok("start", "app")
    wait_until("the app serves again", lambda: (stack.status() is not None and stack.status().get("state") == "serving",
                                                 str(stack.status())), timeout=120)
