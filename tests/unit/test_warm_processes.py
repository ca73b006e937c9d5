"""The reload server's books of its warm process: what it is started with and what the preload file keeps
(no process is started: WarmProcess is replaced by a recorder)."""

from unstuck import warm_process_client
from unstuck.warm_process_client import WarmProcesses


class Recorded:
    def __init__(self, listen_fd, preload_file, modules, events, also=frozenset()):
        self.modules = modules | also
        self.listed, self.also = modules, also
        self.retiring = False

    def preload(self, modules):
        self.modules = self.modules | frozenset(modules)

    def retire(self):
        self.retiring = True


def test_a_first_start_imports_the_seeds_but_the_preload_file_keeps_only_what_the_app_used(tmp_path, monkeypatch):
    monkeypatch.setattr(warm_process_client, "WarmProcess", Recorded)
    preload = tmp_path / "preload.txt"
    warm = WarmProcesses(-1, preload, events=None, enabled=True)
    warm.start({"fastapi", "pandas"})  # no preload file yet: the seeds of a first start
    assert warm.next.also == {"fastapi", "pandas"} and warm.next.listed == set()
    assert not preload.exists()
    warm.learn(("fastapi", "uvicorn"))
    assert set(preload.read_text().split()) == {"fastapi", "uvicorn"}  # pandas was never used: not kept
    assert "uvicorn" in warm.next.modules  # imported in place, between forks

    # The next start of the container imports what the file lists, and nothing else.
    again = WarmProcesses(-1, preload, events=None, enabled=True)
    again.start(again.remembered())
    assert again.next.listed == {"fastapi", "uvicorn"} and again.next.also == frozenset()
