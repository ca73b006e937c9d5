"""The fault matrix: every broken state heals itself with no human action, and the port keeps answering.

Each test records the seconds from the fixing event to the first HTTP 200 carrying the new code.
"""

import random
import threading
import time

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as ws_connect

from editor import save_atomic, save_in_place
from fault_app import fault_app
from repo import RECOVERIES
from waiting import has_text, wait_for, wait_until

INFINITE_LOOP = "while True:\n    pass\n"


def start_fault_app(start_container, message="v1", env=None, **app):
    served = start_container(env=env, files={"main.py": fault_app(message, **app)})
    return served


def wait_state(served, wanted: str) -> dict:
    return served.wait_state(wanted)


def record(name: str, seconds: float) -> None:
    RECOVERIES.append((name, seconds))


def request_ignoring_errors(url: str) -> None:
    try:
        httpx.get(url, timeout=10)
    except httpx.HTTPError:
        pass  # the request that kills its worker gets no answer; what follows is what counts


# 4 -----------------------------------------------------------------------------------------------------

def test_lifespan_startup_failure_shows_error_then_fix_is_served(start_container):
    served = start_fault_app(start_container)
    wait_for(served.url(), has_text(200, "v1"), on_timeout=served.logs_tail)
    main = served.app_dir / "main.py"
    save_in_place(main, fault_app("v2", startup="raise RuntimeError('database unreachable')"))
    _, broken = wait_for(served.url(), has_text(503, "RuntimeError", "database unreachable"),
                         on_timeout=served.logs_tail)
    assert "main.py" in broken.text and "startup" in broken.text.lower()
    assert wait_state(served, "broken")["failure"]["phase"] == "startup"

    save_in_place(main, fault_app("v3"))
    seconds, _ = wait_for(served.url(), has_text(200, "v3"), on_timeout=served.logs_tail)
    record("lifespan startup raises, fixed -> served", seconds)


def test_app_errors_are_not_masked_once_loaded(start_container):
    served = start_fault_app(start_container)
    wait_for(served.url(), has_text(200, "v1"), on_timeout=served.logs_tail)
    response = httpx.get(served.url("/boom"), timeout=10)
    assert response.status_code == 500 and "x-unstuck-state" not in response.headers
    assert httpx.get(served.url("/nope"), timeout=10).status_code == 404


# 5 -----------------------------------------------------------------------------------------------------

def test_serving_process_sigkilled_comes_back_without_a_change(start_container):
    served = start_fault_app(start_container)
    wait_for(served.url(), has_text(200, "v1"), on_timeout=served.logs_tail)
    # The worker's pid comes with the warm process's word of the fork, which may follow the first answer.
    pid = served.wait_status("serving, with the worker's pid", lambda s: s["state"] == "serving"
                             and isinstance(s.get("worker_pid"), int))["worker_pid"]
    killed_at = time.monotonic()
    code, out = served.exec("python", "-c", f"import os, signal; os.kill({pid}, signal.SIGKILL)")
    assert code == 0, out
    wait_for(served.url(), has_text(200, "v1"), on_timeout=served.logs_tail)
    record("serving process SIGKILLed -> served", time.monotonic() - killed_at)
    status = wait_state(served, "serving")
    assert status["worker_pid"] != pid
    # One crash, restarted at once with no backoff.
    assert status["counters"]["crashes"] == 1 and status["counters"]["restarts"] == 1
    assert status["restart_delay"] == 0


# 6 -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("route, how", [("/exit", "exited with code 1"), ("/segfault", "was killed by SIGSEGV")])
def test_crash_loop_backs_off_capped_and_never_gives_up(start_container, route, how):
    served = start_fault_app(start_container, env={"UNSTUCK_BACKOFF_MAX": "2"})
    wait_for(served.url(), has_text(200, "v1"), on_timeout=served.logs_tail)
    crash_page_seen = False
    # 0 s, 1 s, 2 s, then capped at UNSTUCK_BACKOFF_MAX
    for crash, delay in enumerate([0, 1, 2, 2, 2], start=1):
        crashed_at = time.monotonic()
        request_ignoring_errors(served.url(route))
        status = served.wait_status(f"crash {crash} is counted", lambda s: s["counters"]["crashes"] == crash)
        assert (status["crashes"], status["restart_delay"]) == (crash, delay), status

        def back_or_crash_page(r):
            nonlocal crash_page_seen
            if r.status_code == 503 and how in r.text:
                crash_page_seen = True  # while backing off, the port says why
            return r.status_code == 200 and "v1" in r.text

        wait_for(served.url(), back_or_crash_page, on_timeout=served.logs_tail)
        record(f"crash {crash} in a row ({route}) -> served", time.monotonic() - crashed_at)
    assert crash_page_seen
    assert served.counter("restarts") == 5


# 7 is in test_supervision.py (every process but PID 1 killed).

# 8 -----------------------------------------------------------------------------------------------------

def read_stream(url: str, outcome: dict) -> None:
    try:
        with httpx.stream("GET", url, timeout=httpx.Timeout(30, read=30)) as response:
            for line in response.iter_lines():
                if line.startswith("data:"):
                    outcome["ticks"] = outcome.get("ticks", 0) + 1
        outcome["end"] = "closed"
    except httpx.HTTPError as exc:
        outcome["end"] = type(exc).__name__


def read_websocket(url: str, outcome: dict) -> None:
    try:
        with ws_connect(url, open_timeout=10) as ws:
            while True:
                ws.recv(timeout=30)
                outcome["ticks"] = outcome.get("ticks", 0) + 1
    except ConnectionClosed as exc:
        outcome["end"] = f"closed {exc.rcvd.code if exc.rcvd else ''}".strip()
    except (OSError, TimeoutError) as exc:
        outcome["end"] = type(exc).__name__


@pytest.mark.parametrize("kind", ["stream", "websocket"])
def test_open_stream_does_not_block_reload(start_container, kind):
    served = start_fault_app(start_container, env={"UNSTUCK_GRACE": "1"})
    wait_for(served.url(), has_text(200, "v1"), on_timeout=served.logs_tail)
    outcome: dict = {}
    if kind == "stream":
        reader = threading.Thread(target=read_stream, args=(served.url("/stream"), outcome), daemon=True)
    else:
        reader = threading.Thread(target=read_websocket, args=(f"ws://127.0.0.1:{served.port}/ws", outcome),
                                  daemon=True)
    reader.start()
    wait_until("the stream delivers", lambda: (outcome.get("ticks", 0) >= 3, str(outcome)))

    saved_at = time.monotonic()
    save_in_place(served.app_dir / "main.py", fault_app("v2"))
    wait_for(served.url(), has_text(200, "v2"), on_timeout=served.logs_tail)
    record(f"reload with an open {kind} -> served", time.monotonic() - saved_at)
    # The old generation is stopped after the grace period: the client sees its connection end.
    wait_until(f"the {kind} client sees its connection end", lambda: ("end" in outcome, str(outcome)))
    reader.join(timeout=5)
    assert not reader.is_alive()


# 9 -----------------------------------------------------------------------------------------------------

def test_infinite_loop_at_import_then_fix_is_served(start_container):
    served = start_fault_app(start_container)
    wait_for(served.url(), has_text(200, "v1"), on_timeout=served.logs_tail)
    main = served.app_dir / "main.py"
    save_in_place(main, fault_app("never", preamble=INFINITE_LOOP))
    wait_state(served, "reloading")
    # The import never finishes: the previous version keeps serving meanwhile.
    assert httpx.get(served.url(), timeout=10).json()["message"] == "v1"
    saved_at = time.monotonic()
    save_in_place(main, fault_app("v2"))
    wait_for(served.url(), has_text(200, "v2"), on_timeout=served.logs_tail)
    record("infinite loop at import, fixed -> served", time.monotonic() - saved_at)


def test_infinite_loop_at_first_start_answers_then_fix_is_served(start_container):
    served = start_fault_app(start_container, message="never", preamble=INFINITE_LOOP)
    # Nothing can serve the app, but the port answers within about a second, saying it is starting.
    wait_for(served.url(), has_text(503, "importing app.main"), on_timeout=served.logs_tail)
    with httpx.Client(timeout=10) as client:
        assert client.get(served.url()).status_code == 503
    saved_at = time.monotonic()
    save_in_place(served.app_dir / "main.py", fault_app("v2"))
    wait_for(served.url(), has_text(200, "v2"), on_timeout=served.logs_tail)
    record("infinite loop at first start, fixed -> served", time.monotonic() - saved_at)


# 10 ----------------------------------------------------------------------------------------------------

def test_latest_save_wins_over_a_slow_import_in_progress(start_container):
    served = start_fault_app(start_container)
    wait_for(served.url(), has_text(200, "v1"), on_timeout=served.logs_tail)
    main = served.app_dir / "main.py"
    # Atomic saves: one event each. (An in-place save whose writer is descheduled between truncating and
    # writing can be delivered as two batches, and the second may restart a reload of the same text.)
    save_atomic(main, fault_app("slow", preamble="time.sleep(4)"))
    wait_state(served, "reloading")
    save_atomic(main, fault_app("latest"))
    wait_for(served.url(), has_text(200, "latest"), on_timeout=served.logs_tail)
    wait_state(served, "serving")
    assert httpx.get(served.url(), timeout=10).json()["message"] == "latest"
    assert served.counter("superseded") == 1  # the slow reload was restarted, not waited for


def test_fix_during_crash_backoff_is_served_without_waiting(start_container):
    served = start_fault_app(start_container)
    wait_for(served.url(), has_text(200, "v1"), on_timeout=served.logs_tail)
    main = served.app_dir / "main.py"
    save_in_place(main, fault_app("crashes", preamble="os._exit(3)"))
    served.wait_status("the crash loop backs off", lambda s: (s.get("restart_delay") or 0) >= 2)
    # Like a failed import, a save whose import kills the process replaces the previous version.
    wait_for(served.url(), has_text(503, "the app process exited with code 3 while loading"),
             on_timeout=served.logs_tail)
    saved_at = time.monotonic()
    save_atomic(main, fault_app("fixed"))
    wait_for(served.url(), has_text(200, "fixed"), on_timeout=served.logs_tail)
    record("fix saved during crash backoff -> served", time.monotonic() - saved_at)


# 11 ----------------------------------------------------------------------------------------------------

PROCESS_TABLE = (
    "import os\n"
    "for p in sorted(int(d) for d in os.listdir('/proc') if d.isdigit() and int(d) != os.getpid()):\n"
    "    try:\n"
    "        stat = open(f'/proc/{p}/stat').read()\n"
    "        cmd = open(f'/proc/{p}/cmdline').read().split(chr(0))\n"
    "    except OSError:\n"
    "        continue\n"
    "    name = stat[stat.index('(') + 1:stat.rindex(')')]\n"
    "    print(stat[stat.rindex(')') + 2], name if name.startswith('unstuck') else ' '.join(cmd[1:4]))\n"
)
# One of each, and nothing else: supervisord, its FATAL listener, the reloader, the warm process, the
# worker it forked ahead of the next reload, and the serving worker.
STEADY = sorted(["-m unstuck.supervision.supervisord_launch --nodaemon", "-m unstuck unfatal", "unstuck-serve", "unstuck-warm",
                 "unstuck-spare", "unstuck-worker"])


def processes(served) -> list[tuple[str, str]]:
    """(state letter, name) of every process in the container but the probe."""
    _, out = served.exec("python", "-c", PROCESS_TABLE)
    return [tuple(line.split(" ", 1)) for line in out.splitlines() if line.strip()]


def wait_steady_process_table(served) -> list[tuple[str, str]]:
    seen = []

    def probe():
        table = processes(served)
        seen.append(table)
        # No app layer (unstuck-layer): this app's only other module is an empty package __init__, which
        # the warm process does not import ahead.
        return sorted(name for _, name in table) == STEADY and all(state != "Z" for state, _ in table), str(table)

    wait_until("the process table is one supervisord, listener, reloader, warm process, spare and worker, no zombies",
               probe)
    # The table seen steady, not a new look: a moment later the warm process may be replacing its spare
    # (after it preloads what the app turned out to use), and two spares show for a few milliseconds.
    return seen[-1]


ACCESS_LINE = '"GET /'  # in uvicorn's access log lines


USR1_WORKERS = ("import os, signal\nfor p in filter(str.isdigit, os.listdir('/proc')):\n    try:\n"
                "        if open(f'/proc/{p}/comm').read().strip() == 'unstuck-worker':\n"
                "            os.kill(int(p), signal.SIGUSR1)\n    except OSError:\n        pass\n")


def test_soak_random_good_and_broken_edits_under_traffic(start_container):
    served = start_fault_app(start_container)
    wait_for(served.url(), has_text(200, "v1"), on_timeout=served.logs_tail)
    wait_state(served, "serving")
    before = wait_steady_process_table(served)

    stop = threading.Event()
    results = {"ok": 0, "error_page": 0, "failed": [], "slowest": 0.0}

    in_flight: dict[int, float] = {}  # traffic thread -> when its request in progress was sent

    def traffic():
        with httpx.Client(timeout=10) as client:
            while not stop.is_set():
                started = in_flight[threading.get_ident()] = time.monotonic()
                try:
                    status_code = client.get(served.url()).status_code
                    results["ok" if status_code == 200 else "error_page"] += 1
                except httpx.HTTPError as exc:
                    results["failed"].append(f"{type(exc).__name__}: {exc} (after {time.monotonic() - started:.2f} s)")
                in_flight.pop(threading.get_ident(), None)
                results["slowest"] = max(results["slowest"], time.monotonic() - started)

    def watchdog():
        # A request unanswered for 5 s: who holds its connection, taken while it is still stuck (for the
        # failure message; once).
        while not stop.wait(0.5):
            if "sockets" not in results and any(time.monotonic() - t > 5 for t in list(in_flight.values())):
                results["sockets"] = f"{served.sockets()}\nstatus: {served.status()}"
                served.exec("python3", "-c", USR1_WORKERS, user="1000")  # each logs its connections
                time.sleep(1)  # for the logs to come through: only on the way to a failure message
                results["workers"] = served.logs_tail(200, leave_out=ACCESS_LINE)

    threads = [threading.Thread(target=traffic, daemon=True) for _ in range(2)]
    threading.Thread(target=watchdog, daemon=True).start()
    for thread in threads:
        thread.start()
    rng = random.Random(1234)
    main = served.app_dir / "main.py"
    broken_variants = [lambda v: fault_app(v) + "\ndef broken(:\n",
                       lambda v: "import not_installed_anywhere\n" + fault_app(v),
                       lambda v: fault_app(v, preamble="raise RuntimeError('soak')"),
                       lambda v: fault_app(v, startup="raise RuntimeError('soak startup')")]
    last_good = None
    for edit in range(300):
        version = f"soak-{edit}"
        if rng.random() < 0.5:
            source, last_good = fault_app(version), version
        else:
            source = rng.choice(broken_variants)(version)
        rng.choice([save_in_place, save_atomic])(main, source)
        time.sleep(rng.uniform(0.0, 0.15))  # an editor's pace, not a condition: the edits are the input
    final = f"soak-final-{last_good}"
    save_in_place(main, fault_app(final))
    seconds, _ = wait_for(served.url(), has_text(200, final), on_timeout=served.logs_tail)
    stop.set()
    for thread in threads:
        thread.join(timeout=15)
    wait_state(served, "serving")
    after = wait_steady_process_table(served)
    assert len(after) == len(before) == len(STEADY)
    # On failure, what the container said besides its access lines (kills, errors, restarts).
    assert results["failed"] == [], f"{results}\n{served.logs_tail(80, leave_out=ACCESS_LINE)}"
    assert results["slowest"] < 10, served.logs_tail(80, leave_out=ACCESS_LINE)
    assert served.counter("killed") == 0  # every retired generation left by itself
    record(f"soak: 300 edits, {results['ok']} 200s + {results['error_page']} 503s, 0 failed, slowest answer "
           f"{results['slowest']:.2f} s; final save -> served", seconds)


# 12 ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("state", ["serving", "broken", "mid-reload", "open-stream"])
def test_stop_is_clean_in_every_state(start_container, state):
    served = start_fault_app(start_container)
    wait_for(served.url(), has_text(200, "v1"), on_timeout=served.logs_tail)
    main = served.app_dir / "main.py"
    if state == "broken":
        save_in_place(main, "def broken(:\n")
        wait_for(served.url(), has_text(503, "SyntaxError"), on_timeout=served.logs_tail)
    elif state == "mid-reload":
        save_in_place(main, fault_app("slow", preamble="time.sleep(30)"))
        wait_state(served, "reloading")
    elif state == "open-stream":
        outcome: dict = {}
        threading.Thread(target=read_stream, args=(served.url("/stream"), outcome), daemon=True).start()
        wait_until("the stream delivers", lambda: (outcome.get("ticks", 0) >= 2, str(outcome)))
    started = time.monotonic()
    served.container.stop(timeout=5)  # a container still running after 5 s is SIGKILLed: exit 137
    result = served.container.wait(timeout=30)
    record(f"docker stop while {state}: seconds to exit", time.monotonic() - started)
    assert result["StatusCode"] == 0, served.logs_tail()


@pytest.mark.parametrize("state", ["crash-backoff", "slow-first-import"])
def test_stop_during_backoff_or_a_slow_first_import_exits_within_3_s(start_container, state):
    """A stop must cancel every timer: a restart due after the stop would start a worker nobody stops."""
    if state == "crash-backoff":
        served = start_fault_app(start_container, env={"UNSTUCK_BACKOFF_MAX": "10"})
        wait_for(served.url(), has_text(200, "v1"), on_timeout=served.logs_tail)
        save_in_place(served.app_dir / "main.py", fault_app("crashes", preamble="os._exit(3)"))
        # Crashing while loading, again and again: the restart timer is armed, 2 s and more ahead.
        served.wait_status("the crash loop backs off", lambda s: (s.get("restart_delay") or 0) >= 2)
    else:
        served = start_fault_app(start_container, message="slow", preamble="time.sleep(30)")
        # Stopped as soon as the first import runs, usually before the "starting" page is due (0.8 s).
        served.wait_state("starting")
    started = time.monotonic()
    served.container.stop(timeout=3)  # still running after 3 s: docker SIGKILLs it, exit 137
    result = served.container.wait(timeout=30)
    record(f"docker stop during {state}: seconds to exit", time.monotonic() - started)
    assert result["StatusCode"] == 0, served.logs_tail()
