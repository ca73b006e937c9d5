"""An app layer goes on loading the app the way a worker does, and stops at the saved module: a request resumes there.

The layer (app_layer.py) imports the user's modules a save does not touch, but leaves out every module that
imports a saved one, and what the framework imported after it: on a Wagtail site a view is imported by `urls.py`,
whose other imports bring in Wagtail's admin and every app's hooks (381 modules, 0.13 s of each reload, in the
worker, every time). Yet a fresh interpreter had done all of that *before* it began to import the saved view:
nothing it did until then can depend on the view's new text. So, once its planned imports are done, the layer
loads the app exactly as a worker does (`worker.import_app`: discovery, the entry module, Django's URLconf as
`runserver` imports it), and when that load is about to import one of the hot modules (the files left out of the
plan), it stops there, inside the import, and waits. The request that it serves resumes that very import: the
saved module is found and read now, fresh, and everything after it runs as in a fresh interpreter, in the order
the app's own code gives.

Why this is right: what the process did up to the stop depends only on files it read before it, and those are
the files it holds (`held`: every user module in `sys.modules`, the modules whose import is still in progress
included; every .py file of the project opened for reading, such as a config a factory executes with Flask's
`from_pyfile`; and where each module it looked for and did not find would be, such as an optional
`local_settings.py`); the warm process hands it a save only if none of them changed, appeared or went
(app_layer.usable). What comes after the stop is the worker's own doing.

How:
- The stop is a finder at the head of `sys.meta_path`, asked before any other finder; it waits and then finds
  nothing, so that the next finders look the module up on disk after the save. importlib asks finders with its
  global import lock held; the wait, the copy of a slow layer (layer_successor.py) and the worker's start all
  happen in this one thread, which holds it (the lock is reentrant, and a fork keeps it held by the same
  thread).
- A load that ends without importing a hot module stops at its end instead (the whole app loaded).
- A load that fails, or that started a thread or left a file open before the stop, cannot stand in for a
  worker: the layer says why, and the next one holds its planned modules only (warm_process, `no_stop`).
"""

from __future__ import annotations

import os
import sys
import sysconfig
from typing import Callable

from unstuck.user_files import is_under


class FilesRead:
    """What the layer's imports read of the project besides its modules' files, while recording: the .py files
    opened for reading (a Python audit hook: it sees `open()`, `io.open_code` and `os.open`), and the modules
    looked for and not found (`try: import local_settings`), which a file saved there would make importable: a
    fresh interpreter would import it, while the layer would go on without it. An audit hook cannot be removed:
    once recording stops, it returns at once."""

    def __init__(self, app_dir) -> None:
        self.app_dir = str(app_dir)
        self.opened: set[str] = set()
        self.looked_for: set[str] = set()
        self.recording = True
        sys.addaudithook(self._hook)
        sys.meta_path.insert(0, self)  # asked for each module not imported yet, before any other finder

    def _hook(self, event: str, args: tuple) -> None:
        if not self.recording or event != "open":
            return
        try:  # a hook that raises would fail the open it watches
            path, mode = args[0], args[1]
            if isinstance(path, str) and path.endswith(".py") and (mode is None or not any(
                    flag in mode for flag in "wax+")) and is_under(path, self.app_dir) and not _opened_by_unstuck():
                self.opened.add(os.path.realpath(path))
        except Exception:  # noqa: BLE001
            pass

    def find_spec(self, name, path=None, target=None):
        if self.recording:
            self.looked_for.add(name)
        return None

    def invalidate_caches(self) -> None:
        pass

    def stop(self) -> None:
        self.recording = False

    def remove(self) -> None:
        """Out of sys.meta_path, once no import is in progress (importlib iterates over that very list)."""
        if self in sys.meta_path:
            sys.meta_path.remove(self)

    def paths(self) -> set[str]:
        """The project's .py files opened, and where in the project each module looked for and not found would
        be (its file, or its package's __init__.py)."""
        paths = set(self.opened)
        for name in self.looked_for - set(sys.modules):
            parent, _, last = name.rpartition(".")
            if parent:
                dirs = getattr(sys.modules.get(parent), "__path__", None) or []
            else:
                dirs = [os.getcwd() if entry in ("", ".") else entry for entry in sys.path]
            for directory in dirs:
                if isinstance(directory, str) and is_under(directory, self.app_dir):
                    base = os.path.join(os.path.realpath(directory), last)
                    paths.update((base + ".py", os.path.join(base, "__init__.py")))
        return paths


_STDLIB = os.path.join(sysconfig.get_paths()["stdlib"], "")
_UNSTUCK = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "")


def _opened_by_unstuck() -> bool:
    """Whether the code that opened the file (the nearest frame outside the standard library) is unstuck's: its
    discovery reads the project's sources to find the app (main.py, the file most often saved), which the app
    itself does not."""
    frame = sys._getframe(2)  # the audit hook's caller's caller: the code that called open()
    while frame is not None:
        filename = frame.f_code.co_filename
        if filename.startswith(_UNSTUCK):
            return True
        if not (filename.startswith("<frozen") or filename.startswith(_STDLIB)):
            return False
        frame = frame.f_back
    return False


class StopBefore:
    """A meta path finder: the first time a module of `names` is to be imported, call `stop(name)` (which returns
    once this process goes on as a worker), then find nothing."""

    def __init__(self, names: set[str], stop: Callable[[str], None]) -> None:
        self.names, self.stop, self.stopped = set(names), stop, False

    def find_spec(self, name, path=None, target=None):
        if not self.stopped and name in self.names:
            self.stopped = True
            self.stop(name)  # (it stays in sys.meta_path, which importlib is iterating over, until the load ends)
        return None

    def invalidate_caches(self) -> None:
        pass

    def install(self) -> None:
        sys.meta_path.insert(0, self)

    def remove(self) -> None:
        if self in sys.meta_path:
            sys.meta_path.remove(self)


def hot_names(listed_modules: list, hot_files: list[str]) -> set[str]:
    """The modules (of the app's list: app_layer.Listed entries) whose file is one of `hot_files`."""
    hot = {os.path.realpath(path) for path in hot_files}
    return {entry[0] for entry in listed_modules if os.path.realpath(entry[1]) in hot}


def load_until(load: Callable[[], object], names: set[str], stop: Callable[[str], None]) -> tuple[object, bool]:
    """Run `load()` (the worker's import of the app), calling `stop(name)` before the first module of `names` is
    imported; what `load()` returned, and whether it stopped on the way."""
    finder = StopBefore(names, stop)
    finder.install()
    try:
        loaded = load()
    finally:
        finder.remove()
    return loaded, finder.stopped
