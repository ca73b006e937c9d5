"""The order in which a process *started* importing modules, and who started each one.

`sys.modules` keeps the order in which imports *finished* (importlib moves a module to the end once it is
executed): `mysite.settings` and every app's `models` come before `mysite.asgi`, whose `django.setup()`
imported them. The app layer (app_layer.py) replays a worker's imports ahead of a reload; replayed in
that order, `polls.models` is imported before anything set Django up, and fails where it never fails in a
fresh process. Replayed in the order the imports started, the entry module comes first and sets its
framework up exactly as a fresh process does.

Each record also says which of the user's modules was running when the import started (its frame is
the nearest user frame on the stack) and whether the framework, not an import statement of that module,
made the import (Django's `INSTALLED_APPS`, `include("blog.urls")`, Wagtail's hook discovery): the edges no
import statement shows, and the imports whose order is the framework's to decide (a registry fills in
that order). A finder at the head of `sys.meta_path` sees each import before anything else does; it
records and finds nothing (the next finder does the work). It costs one frame walk per module imported.
"""

from __future__ import annotations

import sys

# name -> (the user's module running when the import started, or ""; True if code other than that module's
# own import statements started it). Insertion order is the order the imports started. Inherited by a fork.
_started: dict[str, tuple[str, bool]] = {}
_app_prefix = ""


def _is_machinery(filename: str) -> bool:
    """A frame of the import machinery itself (or of this finder), not of the code that asked for the import:
    `importlib.import_module` called by the user's own code is still the user's import statement."""
    return filename.startswith("<frozen importlib") or filename.endswith("/importlib/__init__.py") or filename == __file__


# How far up the stack to look for the user's frame (a framework's loader is a few dozen frames deep).
_MAX_DEPTH = 80


class _Recorder:
    """A meta path finder that only records (a class: importlib looks `find_spec` up on it)."""

    @staticmethod
    def find_spec(name, path=None, target=None):
        if name not in _started:
            _started[name] = _who_started(sys._getframe(1))
        return None

    @staticmethod
    def invalidate_caches():
        pass


def _who_started(frame) -> tuple[str, bool]:
    framework = False
    for _ in range(_MAX_DEPTH):
        if frame is None:
            break
        filename = frame.f_code.co_filename
        if _app_prefix and filename.startswith(_app_prefix):
            return frame.f_globals.get("__name__", "") or "", framework
        if not _is_machinery(filename):
            framework = True
        frame = frame.f_back
    return "", True


def install(app_dir) -> None:
    """Record from now on the imports of this process (and of its forks), for the user's tree at `app_dir`."""
    global _app_prefix
    _app_prefix = str(app_dir).rstrip("/") + "/"
    if not any(isinstance(finder, _Recorder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _Recorder())


def replaying(name: str, importer: str, framework: bool) -> None:
    """The app layer imports `name` because a worker once did: keep what that worker recorded (the layer's own
    frames would say "imported by unstuck")."""
    _started.setdefault(name, (importer, framework))


def started(name: str) -> tuple[int, str, bool] | None:
    """When (an index: lower started earlier), by whom and how the import of `name` started; None if it was
    not recorded (imported before install)."""
    found = _started.get(name)
    if found is None:
        return None
    return _index().get(name, len(_started)), found[0], found[1]


_cached_index: tuple[int, dict[str, int]] = (-1, {})


def _index() -> dict[str, int]:
    global _cached_index
    if _cached_index[0] != len(_started):
        _cached_index = (len(_started), {name: i for i, name in enumerate(_started)})
    return _cached_index[1]
