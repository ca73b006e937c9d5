"""Procfile workers in a real container, with no outside services: a worker runs beside the web app,
restarts with it on the same change batch, survives crashes and broken saves without FATAL, follows
Procfile edits, and stops within its grace on `docker stop`."""

import time

import httpx

from editor import save_in_place
from repo import RECOVERIES
from waiting import has_text, wait_for, wait_until

# A worker that writes the version of its code to a file every 50 ms, the way a job worker would run
# the current task code. Run as `python -m app.ticker NAME`.
TICKER = '''\
import os, signal, sys, time
VERSION = {version!r}
name = sys.argv[1]
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
{preamble}
while True:
    # Written aside and renamed over, so a reader never sees the file empty between truncate and write.
    with open(f"/tmp/{{name}}.out.new", "w") as out:
        out.write(f"{{VERSION}} {{os.getpid()}}")
    os.replace(f"/tmp/{{name}}.out.new", f"/tmp/{{name}}.out")
    time.sleep(0.05)
'''


def ticker(version: str, preamble: str = "") -> str:
    return TICKER.format(version=version, preamble=preamble)


def worker_output(served, name: str = "ticker") -> tuple[str, int]:
    code, out = served.exec("cat", f"/tmp/{name}.out")
    if code != 0 or " " not in out:
        return "", 0
    version, pid = out.split()
    return version, int(pid)


def runs(served, version: str, name: str = "ticker"):
    return lambda: (worker_output(served, name)[0] == version, str(worker_output(served, name)))


def proc(status: dict, name: str = "ticker") -> dict:
    return status.get("procs", {}).get(name, {})


# A line as a shell reads it: two steps (` ;`), quotes, a variable and a comment (` #`), none of which
# supervisord's config parser may cut or split.
TICKER_LINE = """ticker: echo 'ticker; "starts"' as $GREETING ; exec python -m app.ticker ticker  # the job worker\n"""


def start_with_ticker(start_container, env=None):
    served = start_container(env=env, files={"ticker.py": ticker("v1"), "Procfile": "web: ignored\n" + TICKER_LINE})
    served.app_dir.joinpath("Procfile").chmod(0o644)
    wait_for(served.url(), has_text(200, "Hello"), on_timeout=served.logs_tail)
    wait_until("the ticker runs v1", runs(served, "v1"))
    # Both steps ran, the first one's output in the log with the variable expanded.
    wait_until("the first step's output is in the log",
               lambda: ('ticker | ticker; "starts" as hello' in served.logs(), served.logs_tail(8)))
    return served


PROCFILE_ENV = {"UNSTUCK_PROCFILE": "/workspace/app/Procfile", "GREETING": "hello"}


def test_a_worker_restarts_with_the_web_app_on_the_same_batch(start_container):
    served = start_with_ticker(start_container, PROCFILE_ENV)
    status = served.wait_status("the ticker is running", lambda s: proc(s).get("state") == "running")
    assert status["state"] == "serving" and proc(status)["reloads"] == 0
    web_reloads = status["counters"]["reloads"]

    main = served.app_dir / "main.py"
    # One batch: the web app and the worker's code change together. Saved one after the other, they can be a
    # batch each (the watcher's step is 1 ms while edits come in): the container is frozen while both are
    # saved, and its watcher reads both changes at once when it thaws.
    served.container.pause()
    try:
        save_in_place(served.app_dir / "ticker.py", ticker("v2"))
        save_in_place(main, main.read_text().replace("Hello from unstuck", "web v2"))
    finally:
        served.container.unpause()
    saved_at = time.monotonic()
    wait_until("the ticker runs v2", runs(served, "v2"))
    RECOVERIES.append(("worker code edited -> new code running", time.monotonic() - saved_at))
    wait_for(served.url(), has_text(200, "web v2"), on_timeout=served.logs_tail)
    status = served.wait_status("both reloaded", lambda s: s["counters"]["reloads"] == web_reloads + 1
                                and proc(s).get("reloads") == 1 and proc(s).get("state") == "running")
    assert status["counters"]["changes"] == 1 and proc(status)["restarts"] == 0


def test_a_broken_worker_shows_in_status_keeps_the_web_app_healthy_and_a_fix_brings_it_back(start_container):
    served = start_with_ticker(start_container, PROCFILE_ENV)
    broken = ticker("v2") + "\ndef broken(:\n"
    save_in_place(served.app_dir / "ticker.py", broken)
    line = len(broken.splitlines())
    status = served.wait_status("the worker's error is in the status",
                                lambda s: (proc(s).get("last_error") or {}).get("exc_type") == "SyntaxError")
    error = proc(status)["last_error"]
    assert (error["file"], error["line"]) == ("app/ticker.py", line), error
    # Restarted with backoff, never given up on: between crashes it is starting (its first second) or
    # waiting to start again.
    assert proc(status)["state"] in ("starting", "backoff", "running")
    # The web app is unaffected: it still answers 200 and the healthcheck still passes.
    assert httpx.get(served.url(), timeout=10).status_code == 200
    code, _ = served.exec("unstuck", "status", "--quiet")
    assert code == 0
    _, text = served.exec("unstuck", "status")
    assert "worker ticker:" in text and f"app/ticker.py:{line}" in text, text

    fixed_at = time.monotonic()
    save_in_place(served.app_dir / "ticker.py", ticker("fixed"))
    wait_until("the fixed worker runs", runs(served, "fixed"))
    RECOVERIES.append(("worker syntax error fixed -> running", time.monotonic() - fixed_at))
    code, out = served.exec("supervisorctl", "status")
    assert "FATAL" not in out and "BACKOFF" not in out, out


def test_a_killed_worker_comes_back_with_no_save(start_container):
    served = start_with_ticker(start_container, PROCFILE_ENV)
    # A pid read as 0 would make the kill below SIGKILL its own process group (CI once saw exit 137).
    def read_pid():
        pid = worker_output(served)[1]
        return pid > 0, str(pid)

    pid = int(wait_until("the ticker's pid is read", read_pid))
    killed_at = time.monotonic()
    code, out = served.exec("python", "-c", f"import os; os.kill({pid}, 9)")
    assert code == 0, out

    def restarted():
        version, new_pid = worker_output(served)
        return new_pid not in (0, pid), f"{version} {new_pid}"

    wait_until("a new worker process runs", restarted)
    RECOVERIES.append(("worker kill -9 -> running again", time.monotonic() - killed_at))
    served.wait_status("one restart counted, and running again", lambda s: proc(s).get("restarts") == 1
                       and proc(s).get("state") == "running")


def test_procfile_edits_add_and_remove_workers_without_a_restart(start_container):
    served = start_with_ticker(start_container, PROCFILE_ENV)
    server_pid = served.status()["pid"]
    procfile = served.app_dir / "Procfile"
    save_in_place(procfile, TICKER_LINE + "second: python -m app.ticker second\n")
    wait_until("the second worker runs", runs(served, "v1", "second"))
    served.wait_status("both listed running", lambda s: proc(s, "second").get("state") == "running"
                       and proc(s).get("state") == "running")
    save_in_place(procfile, "second: python -m app.ticker second\n")
    status = served.wait_status("the ticker is gone, the second one runs", lambda s: "ticker" not in s.get("procs", {})
                                and proc(s, "second").get("state") == "running")
    assert status["pid"] == server_pid  # the same reload server all along: no container restart
    code, out = served.exec("supervisorctl", "status")
    assert "proc-ticker" not in out and "proc-second" in out, out


def test_docker_stop_with_a_worker_running_is_prompt_and_clean(start_container):
    # The worker ignores SIGTERM: it is killed after UNSTUCK_WORKER_GRACE, and the container still exits 0.
    served = start_container(env={**PROCFILE_ENV, "UNSTUCK_WORKER_GRACE": "2"},
                             files={"ticker.py": ticker("v1", "import signal as s; s.signal(s.SIGTERM, s.SIG_IGN)"),
                                    "Procfile": "ticker: python -m app.ticker ticker\n"})
    wait_for(served.url(), has_text(200, "Hello"), on_timeout=served.logs_tail)
    wait_until("the ticker runs", runs(served, "v1"))
    started = time.monotonic()
    served.container.stop(timeout=10)
    result = served.container.wait(timeout=30)
    seconds = time.monotonic() - started
    RECOVERIES.append(("docker stop with a worker ignoring SIGTERM (grace 2 s): seconds", seconds))
    assert result["StatusCode"] == 0, served.logs_tail()  # 137 if docker had had to kill it


# A release that hangs as a migration waiting for a lock does: it says what it waits for, then waits, deaf to
# SIGTERM (so that only the SIGKILL after the grace ends it).
HANGING_RELEASE = "release: echo 'waiting for the lock on table jobs' ; trap '' TERM ; sleep 3600\n"
COUNT_SLEEPERS = """
import os
def cmdline(pid):
    try:
        return open(f"/proc/{pid}/cmdline", "rb").read()
    except OSError:
        return b""
print(sum(cmdline(pid) == b"sleep\\x003600\\x00" for pid in os.listdir("/proc") if pid.isdigit()))
"""


def test_a_release_that_hangs_is_stopped_after_the_timeout_the_workers_start_and_a_save_runs_it_again(
        start_container):
    served = start_container(env={**PROCFILE_ENV, "UNSTUCK_RELEASE_TIMEOUT": "3", "UNSTUCK_WORKER_GRACE": "1"},
                             files={"ticker.py": ticker("v1"),
                                    "Procfile": HANGING_RELEASE + "ticker: python -m app.ticker ticker\n"})
    served.app_dir.joinpath("Procfile").chmod(0o644)
    wait_for(served.url(), has_text(200, "Hello"), on_timeout=served.logs_tail)  # the web app never waits for it
    status = served.wait_status("the hung release is stopped", lambda s: (s.get("release") or {}).get(
        "state") == "failed", timeout=60)
    last = status["release"]["last"]
    assert last["timed_out"] and 3 <= last["seconds"] < 30, last
    command = HANGING_RELEASE.split(": ", 1)[1].strip()
    assert last["error"] == (f"{command!r} hung: it did not exit within 3 s and was stopped (its last line: waiting "
                             "for the lock on table jobs); set UNSTUCK_RELEASE_TIMEOUT to give it longer (0: no "
                             "limit)"), last
    wait_until("the worker starts once the release was stopped", runs(served, "v1"))
    _, text = served.exec("unstuck", "status")
    assert f"release:      stopped in {last['seconds']:.1f} s" in text and last["error"] in text, text
    logs = served.logs()
    assert (f"release {command!r} did not exit within 3 s: stopping it (SIGTERM, then SIGKILL after 1 s); set "
            "UNSTUCK_RELEASE_TIMEOUT to give it longer (0: no limit)") in logs, served.logs_tail()
    assert "release | waiting for the lock on table jobs" in logs
    wait_until("nothing of it is left running", lambda: (
        served.exec("python3", "-c", COUNT_SLEEPERS)[1].strip() == "0", served.exec("python3", "-c", COUNT_SLEEPERS)[1]))

    # The next save runs it again (it may be the fix), then restarts the worker on the new code.
    save_in_place(served.app_dir / "ticker.py", ticker("v2"))
    wait_until("the worker runs v2 after the second release was stopped", runs(served, "v2"), timeout=60)
    status = served.status()
    assert status["release"]["runs"] == 2 and status["release"]["last"]["timed_out"], status["release"]


# A Heroku-style project as such repositories lay it out: dependencies in requirements.txt, and a Procfile
# whose `release` migrates (a stand-in for `python manage.py migrate` that needs the dependencies and records
# each run) and whose worker needs the dependencies and the migrations. The web app writes its data beside
# its code, as apps do: a cache directory and a SQLite file at import, uploads while it serves.
HEROKU_STYLE = {
    "requirements.txt": "six==1.16.0\n",
    "Procfile": "web: gunicorn main:app --log-file -\nrelease: python migrate.py --noinput\nworker: python worker.py\n",
    "main.py": '''\
import os, sqlite3
DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), ".data")
os.makedirs(os.path.join(DATA, "cache"), exist_ok=True)
db = sqlite3.connect(os.path.join(DATA, "app.sqlite3"), check_same_thread=False)
db.execute("create table if not exists hits (at real)")
db.commit()


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    db.execute("insert into hits values (julianday('now'))")
    db.commit()
    os.makedirs(os.path.join(DATA, "uploads"), exist_ok=True)
    with open(os.path.join(DATA, "uploads", "avatar.png"), "wb") as upload:
        upload.write(b"PNG")
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hello from a heroku-style project"})
''',
    "worker.py": '''\
import os, signal, sys, time
import six  # needs the dependencies
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, ".data", "releases.log")) as runs:  # and the migrations
    seen = len(runs.readlines())
with open("/tmp/worker.out", "w") as out:
    out.write(f"{seen} {os.getpid()}")
while True:
    time.sleep(1)
''',
}
MIGRATE = '''\
import os, sys
import six  # needs the dependencies
here = os.path.dirname(os.path.abspath(__file__))
os.makedirs(os.path.join(here, ".data"), exist_ok=True)
with open(os.path.join(here, ".data", "releases.log"), "a") as runs:
    runs.write(" ".join(sys.argv[1:]) + "\\n")
print("Operations to perform: apply all migrations")
if {fail}:
    raise RuntimeError("migration 0002 cannot be applied")
print("Applying jobs.0001_initial... OK")
'''


def test_a_heroku_style_procfile_release_runs_before_the_workers_and_the_apps_writes_are_not_saves(
        start_project, tmp_path):
    project = tmp_path / "heroku-style"
    project.mkdir()
    for name, text in {**HEROKU_STYLE, "migrate.py": MIGRATE.format(fail=False)}.items():
        (project / name).write_text(text)
    served = start_project(project, writable=True)
    wait_for(served.url(), has_text(200, "heroku-style"), timeout=180, on_timeout=served.logs_tail)
    status = served.wait_status("the release ran and the worker runs", lambda s: (s.get("release") or {}).get(
        "state") == "ok" and proc(s, "worker").get("state") == "running", timeout=60)
    RECOVERIES.append(("release (a stand-in migrate) run time", status["release"]["last"]["seconds"]))
    logs = served.logs()
    # The worker started once the dependencies were installed and the release had run, and never crashed.
    assert proc(status, "worker")["restarts"] == 0 and "No module named" not in logs, served.logs_tail()
    # It saw one release (waited for: the file is written once, just after the worker starts).
    wait_until("the worker saw one release", lambda: (worker_output(served, "worker")[0] == "1",
                                                      str(worker_output(served, "worker"))))
    assert logs.index("dependencies installed") < logs.index("release | Operations to perform") \
        < logs.index("release done") < logs.index("starting worker"), served.logs_tail()
    runs = served.app_dir / ".data" / "releases.log"

    # A save restarts the worker; a release that succeeded does not run again for it.
    save_in_place(served.app_dir / "migrate.py", MIGRATE.format(fail=True))
    served.wait_status("the worker restarted", lambda s: proc(s, "worker").get("reloads") == 1)
    assert runs.read_text() == "--noinput\n"

    # An install runs the release again; it fails: shown in the log and the status, not restarted.
    requirements = served.app_dir / "requirements.txt"
    save_in_place(requirements, requirements.read_text() + "# the same set, installed again\n")
    status = served.wait_status("the release failed and the worker restarted after it", lambda s: (
        s.get("release") or {}).get("state") == "failed" and proc(s, "worker").get("reloads") == 2, timeout=60)
    last = status["release"]["last"]
    assert last["code"] == 1 and last["error"].startswith("RuntimeError: migration 0002 cannot be applied "
                                                          "(migrate.py:9)"), last
    assert status["release"]["runs"] == 2 and runs.read_text() == "--noinput\n" * 2
    assert "release | RuntimeError: migration 0002 cannot be applied" in served.logs()
    _, text = served.exec("unstuck", "status")
    assert "release:      failed (exit code 1)" in text and "runs again with the next save" in text, text

    # The fix is the next save: the release runs again, then the worker restarts and sees it.
    save_in_place(served.app_dir / "migrate.py", MIGRATE.format(fail=False))
    status = served.wait_status("the release ran again and the worker restarted after it", lambda s: (
        s.get("release") or {}).get("state") == "ok" and proc(s, "worker").get("reloads") == 3, timeout=60)
    wait_until("the worker saw three releases", lambda: (worker_output(served, "worker")[0] == "3",
                                                         str(worker_output(served, "worker"))))
    assert status["release"]["runs"] == 3

    # What the app wrote (.data/cache, the SQLite file, uploads) was never taken for a save: the three
    # saves are the only changes.
    detected = [line for line in served.logs().splitlines() if "change detected" in line]
    assert len(detected) == 3 and not any(".data" in line for line in detected), detected
    assert served.status()["counters"]["changes"] == 3
