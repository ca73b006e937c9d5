"""A dependency save's check (the dependency set's tree walks, TOML parsing, content hashes: 0.1-0.3 s on a
600-directory tree here) runs on the thread that delivers the batch or on the install's, never on the reload
server's loop, whose timers (settle windows, kill deadlines) and reports it would hold up."""

import threading
from pathlib import Path

import pytest

from unstuck import config
from unstuck.reload import reloader as reloader_mod
from unstuck.seams.watchfiles_seam import Change


@pytest.fixture
def server(tmp_path, monkeypatch):
    (tmp_path / "requirements.txt").write_text("httpx\n")
    (tmp_path / "main.py").write_text("app = None\n")
    settings = config.load({"APP_DIR": str(tmp_path), "UNSTUCK_RUN_DIR": str(tmp_path / "run"),
                            "UNSTUCK_PROJECT_ENV": str(tmp_path / "env")}, check_dirs=False)
    checks, installs, spawned = [], [], []

    def check(root, env=None):
        checks.append(threading.current_thread())
        return [Path(root) / "requirements.txt"], {"chosen": "requirements.txt", "left_out": None}

    def install(paths, root, on_done):
        installs.append(list(paths))
        server.install_done = on_done

    monkeypatch.setattr(reloader_mod.dependencies, "check", check)
    monkeypatch.setattr(reloader_mod.dependencies, "pending", lambda root, env=None: check(root, env)[0])
    monkeypatch.setattr(reloader_mod.dependencies, "install", install)
    server = reloader_mod.Reloader(settings)
    monkeypatch.setattr(server, "spawn", lambda gen: spawned.append(gen))
    server.checks, server.installs, server.spawned = checks, installs, spawned
    return server


def delivered_by_the_watcher(server, path: Path):
    """What the watcher's thread does with a batch: describe it and queue it for the loop."""
    thread = threading.Thread(target=lambda: server.events.put(server.describe_batch({(Change.modified, str(path))})),
                              name="watch")
    thread.start()
    thread.join()


def test_a_saved_requirements_file_is_checked_off_the_loop_and_then_installed(server, tmp_path):
    delivered_by_the_watcher(server, tmp_path / "requirements.txt")
    server.dispatch(server.events.get(timeout=5))  # the loop (this thread) applies the batch
    loop = threading.current_thread()
    assert server.checks and loop not in server.checks, [t.name for t in server.checks]
    assert server.installs == [[tmp_path / "requirements.txt"]]  # what the check found is what is installed
    assert server.machine.installing


def test_what_is_still_pending_after_an_install_is_checked_on_the_installs_thread(server, tmp_path, monkeypatch):
    monkeypatch.setattr(server, "rebuild_warm", lambda: None)
    delivered_by_the_watcher(server, tmp_path / "requirements.txt")
    server.dispatch(server.events.get(timeout=5))
    (tmp_path / "requirements.txt").write_text("httpx\nrich\n")  # saved again while it installs
    delivered_by_the_watcher(server, tmp_path / "requirements.txt")
    server.dispatch(server.events.get(timeout=5))
    assert server.machine.install_again
    outcome = reloader_mod.dependencies.Outcome(True, ["requirements.txt"], 1.0)
    finishing = threading.Thread(target=server.install_done, args=(outcome,), name="install")
    finishing.start()
    finishing.join()
    server.dispatch(server.events.get(timeout=5))  # Installed: the second save is installed too
    assert len(server.installs) == 2
    loop = threading.current_thread()
    assert loop not in server.checks and {t.name for t in server.checks} == {"watch", "install"}
