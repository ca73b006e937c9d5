"""The reload server's books of its warm process: what it is started with and what the preload file keeps
(no process is started: WarmProcess is replaced by a recorder)."""

from unstuck import wire
from unstuck.reload import warm_process_client
from unstuck.warm import orm_ahead
from unstuck.reload.warm_process_client import WarmProcesses


class Recorded:
    def __init__(self, listen_fd, preload_file, modules, events, also=frozenset(), narrow=False, layer_off=False,
                 orm_ahead_off=False):
        self.modules = frozenset() if narrow else modules | also
        self.listed, self.also = modules, also
        self.narrow, self.layer_off, self.orm_ahead_off = narrow, layer_off, orm_ahead_off
        self.retiring = False
        self.ops = []
        self.pid = 4242

    def send(self, request):
        self.ops.append(wire.tag_of(request))

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


def test_the_preload_file_keeps_the_order_in_which_the_app_first_imported_its_modules(tmp_path, monkeypatch):
    """The warm process imports them in that order and stops at the first that fails outside the app (a
    framework not set up yet): sorted, a module the app imported late could come before what sets it up."""
    monkeypatch.setattr(warm_process_client, "WarmProcess", Recorded)
    preload = tmp_path / "preload.txt"
    warm = WarmProcesses(-1, preload, events=None, enabled=True)
    warm.start(set())
    warm.learn(["django", "django.conf", "allauth"])
    warm.learn(["django", "anyio", "allauth"])
    assert preload.read_text().split() == ["django", "django.conf", "allauth", "anyio"]
    assert WarmProcesses(-1, preload, events=None, enabled=True).remembered() == preload.read_text().split()


def ready_warm(tmp_path, monkeypatch, preloaded: str):
    """Books of a warm process (recorded, not started) that preloads `preloaded` and is ready; it, and its record."""
    monkeypatch.setattr(warm_process_client, "WarmProcess", Recorded)
    preload = tmp_path / "preload.txt"
    preload.write_text(f"{preloaded}\n")
    warm = WarmProcesses(-1, preload, events=None, enabled=True)
    warm.start(warm.remembered())
    first = warm.next
    warm.on_ready(first, wire.WarmStarted(1, [], None, 0.1))
    return warm, first


def test_each_fast_path_found_wrong_is_narrowed_one_step_until_there_is_none(tmp_path, monkeypatch):
    warm, first = ready_warm(tmp_path, monkeypatch, "lateconf")
    preload = warm.preload_file
    assert first.modules == {"lateconf"}

    said = warm.distrust("app layer")
    assert "app layer is off" in said and first.ops == ["no-layer"] and not first.retiring

    said = warm.distrust("spare")
    assert "no longer imports the modules the app used" in said
    assert first.retiring and warm.next.narrow and warm.next.layer_off and warm.next.modules == frozenset()
    warm.learn(["lateconf", "anyio"])  # still recorded for the next start, but not imported now
    assert warm.next.modules == frozenset() and preload.read_text().split() == ["lateconf", "anyio"]

    said = warm.distrust("fork")
    assert "off until the container restarts" in said and warm.current is None and warm.next is None
    assert warm.distrust("fork") == "Reloads start fresh interpreters already."

    # A restart tries the fast path again (and checks it again): nothing kept says otherwise.
    again = WarmProcesses(-1, preload, events=None, enabled=True)
    again.start(again.remembered())
    assert not again.next.narrow and not again.next.layer_off and "lateconf" in again.next.modules
    assert not again.next.orm_ahead_off


def test_mappers_configured_ahead_found_unproven_turn_off_only_that_then_the_layer(tmp_path, monkeypatch):
    warm, first = ready_warm(tmp_path, monkeypatch, "sqlalchemy")

    said = warm.distrust(orm_ahead.SOURCE)
    assert "no longer configures SQLAlchemy's mappers" in said and first.ops == ["no-orm-ahead"]
    assert not first.retiring and not warm.layer_off
    warm.rebuild()  # a warm process started from now on is told too
    assert warm.next.orm_ahead_off and not warm.next.layer_off

    said = warm.distrust(orm_ahead.SOURCE)  # wrong again (cannot be, with them off): the next step, the layer
    assert "app layer is off" in said and warm.layer_off
