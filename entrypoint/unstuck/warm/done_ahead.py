"""What a chain's first worker did that the chain's next layer can do ahead, while it waits for the next save.

A layer of a chain (layer_successor.py) waits for a save with the modules it imported; the worker it becomes
then does, at every save, some work that depends only on what the layer holds: it compiles the sources its app
loads by path when it starts (code_memo.py; mealie: alembic's 37 revision scripts) and builds again the routes
of the layer's routers that a resumed module includes with a prefix (router_replay.py; mealie: 243 routes under
`/api`). The chain's first worker to answer notes them and writes them down after its first answer (the run
directory's `layer-ahead.json`); the next layer of the chain, waiting, reads them and does that work ahead,
so that the worker it becomes finds it done; so does the twin waiting behind it (layer_successor.fork_twin), and
every later layer of the chain, a fork of that twin, holds that work from the start (done once, its memory
shared). What is done ahead is only used where it is exactly what the worker
would have made (equal source bytes; route_memo's arguments and checks): a record that no longer fits costs the
layer time and memory, never a different answer.
"""

from __future__ import annotations

from unstuck.warm import code_memo, layer_successor, router_replay

FILE = "layer-ahead.json"

done = False  # in a layer of a chain: the chain's record was done ahead here (or in the layer it was forked from)


def worker_begins() -> None:
    """In a worker made from a layer of a chain: note what it compiles and includes from now on."""
    if layer_successor.chain is None:
        return
    if code_memo.installed is not None:
        code_memo.installed.missed = []
    router_replay.calls = []


def record(run_dir) -> None:
    """In a worker made from a layer of a chain, after its first answer: write down what it noted, unless a worker
    of its chain did."""
    calls, router_replay.calls = router_replay.calls, None
    memo, missed = code_memo.installed, None
    if memo is not None:
        missed, memo.missed = memo.missed, None
    if layer_successor.chain is None or calls is None or _recorded(run_dir) is not None:
        return
    includes = router_replay.described(calls)
    sources = [path for path in dict.fromkeys(missed or ()) if path.endswith(".py")]
    # No run directory: the chain's layers do nothing ahead.
    layer_successor.write_chain_record(run_dir, FILE, {"sources": sources, "includes": includes})


def do(run_dir, stop=lambda: False) -> bool:
    """In a layer of a chain (one thread), waiting: do what its chain's record says, once it is there; whether it
    is done (a request that came meanwhile, `stop()`, leaves it for the next layer)."""
    global done
    if done:
        return True
    recorded = _recorded(run_dir)
    if recorded is None:
        return False
    router_replay.replay(recorded["includes"], stop)
    if code_memo.installed is not None:
        code_memo.installed.compile_ahead([path for path in recorded["sources"] if isinstance(path, str)], stop)
    done = not stop()
    return done


def _recorded(run_dir) -> dict | None:
    return layer_successor.chain_record(run_dir, FILE, {"sources": list, "includes": list})
