"""Sources compiled ahead, by a layer of a chain while it waits, for the worker it becomes (layer_successor.py).

Why: the image runs with PYTHONDONTWRITEBYTECODE (no `__pycache__` in the user's tree), so each process compiles
every user source it loads. A worker resumed from an app layer imports the saved module and the few it stopped
in, but its app may also load files by path when it starts: mealie's lifespan checks the database against
alembic's 37 revision scripts, compiled in every worker (28 ms of a reload's 0.25 s). Those are the same files at
every save of a chain, and the chain's first worker says which they were (done_ahead.py): its next layer, waiting
for the next save, compiles them.

A source's code object is a pure function of its bytes, its path (the code's file name) and the compile flags
(the same in every process the warm process forks): the loader's compile (`SourceLoader.source_to_code`) finds
the code kept for a path, and uses it only if the bytes it has just read are equal to the bytes that code was
compiled from. A source whose compile warns (a SyntaxWarning) or fails is not kept: compiled when loaded, it says
so as it would in a fresh interpreter. The plain path (a fresh interpreter) never has this: a generation that
fails is tried there before anything is reported (reload/events.py).
"""

from __future__ import annotations

import inspect
import warnings

from importlib import _bootstrap_external

# SourceLoader.source_to_code's parameters where this wraps it (3.11 to 3.13): another form is left as it is.
_PARAMETERS = ("self", "data", "path", "_optimize")


class CodeMemo:
    """Code objects by path, with the bytes each was compiled from; while `missed` is a list (a chain's worker,
    until it writes down what it did: done_ahead.py), the paths compiled without one."""

    def __init__(self) -> None:
        self.kept: dict[tuple[str, int], tuple[bytes, object]] = {}
        self.missed: list[str] | None = None
        self.hits = 0

    def find(self, data, path, optimize: int):
        if type(data) is not bytes or type(path) is not str:
            return None
        found = self.kept.get((path, optimize))
        if found is not None and found[0] == data:
            self.hits += 1
            return found[1]
        if self.missed is not None:
            self.missed.append(path)
        return None

    def compile_ahead(self, paths: list[str], stop=lambda: False) -> int:
        """Compile and keep each source of `paths` that compiles without a warning (in a process running one
        thread: the warnings filters are changed while it compiles); how many were kept. `stop()` is asked between
        sources."""
        kept = 0
        for path in dict.fromkeys(paths):
            if stop():
                break
            try:
                with open(path, "rb") as source:
                    data = source.read()
            except OSError:
                continue
            with warnings.catch_warnings(record=True) as warned:
                warnings.simplefilter("always")
                try:
                    code = compile(data, path, "exec", dont_inherit=True, optimize=-1)
                except Exception:  # noqa: BLE001 - the app's own error: it gets it when it loads the file
                    continue
            if not warned:
                self.kept[(path, -1)] = (data, code)
                kept += 1
        return kept


def install() -> CodeMemo | None:
    """Route the source loader's compile through a memo (once per process family: forks inherit it); the memo, or
    None when this Python's loader has another form."""
    global installed
    loader = _bootstrap_external.SourceLoader
    original = loader.__dict__.get("source_to_code")
    if installed is not None or original is None or getattr(original, "_unstuck_memo", None) is not None:
        return installed
    if tuple(inspect.signature(original).parameters) != _PARAMETERS:
        return None
    memo = CodeMemo()

    def source_to_code(self, data, path, *, _optimize=-1):
        code = memo.find(data, path, _optimize)
        return code if code is not None else original(self, data, path, _optimize=_optimize)

    source_to_code._unstuck_memo = memo
    source_to_code.__wrapped__ = original
    loader.source_to_code = source_to_code
    installed = memo
    return memo


installed: CodeMemo | None = None
