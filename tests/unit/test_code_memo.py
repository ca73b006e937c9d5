"""Sources compiled ahead (warm/code_memo.py): a file loaded by path (as alembic loads its revision scripts) runs
the code compiled ahead only while its bytes are those it was compiled from, and a source whose compile warns is
compiled when it is loaded, so that it says so as a fresh interpreter does. Each case runs in a fresh interpreter
(the memo routes the import system's compile for the whole process)."""

import subprocess
import sys
import textwrap

from repo import REPO

SCRIPT = textwrap.dedent("""\
    import importlib.util, json, sys, warnings
    sys.path.insert(0, sys.argv[1])
    from unstuck.warm import code_memo

    memo = code_memo.install() if sys.argv[2] == "memo" else None
    paths = sys.argv[3:]
    if memo is not None:
        kept = memo.compile_ahead(paths)

    def load(path):
        spec = importlib.util.spec_from_file_location("loaded", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module.TEXT

    said = {"first": load(paths[0])}
    with open(paths[0], "a") as source:  # the same size would do: the bytes are compared, not the times
        source.write("TEXT = 'saved again'\\n")
    said["saved"] = load(paths[0])
    with warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always")
        said["warns"] = load(paths[1])
    said["warnings"] = [str(w.message) for w in warned]
    said["kept"] = memo and kept
    said["hits"] = memo and memo.hits
    print(json.dumps(said))
""")


def loaded(tmp_path, mode: str) -> dict:
    plain, warns = tmp_path / f"{mode}-plain.py", tmp_path / f"{mode}-warns.py"
    plain.write_text("TEXT = 'as compiled'\n")
    warns.write_text("TEXT = 'warns'\nPATTERN = '\\d'\n")  # an invalid escape: a warning at compile time
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(REPO / "entrypoint"), mode, str(plain), str(warns)],
                         capture_output=True, text=True, timeout=60, env={"PYTHONDONTWRITEBYTECODE": "1"})
    assert out.returncode == 0, out.stderr
    import json

    return json.loads(out.stdout)


def test_a_source_compiled_ahead_is_used_while_its_bytes_are_the_same_and_one_that_warns_is_compiled_when_loaded(
        tmp_path):
    fresh = loaded(tmp_path, "fresh")
    said = loaded(tmp_path, "memo")
    assert said["kept"] == 1 and said["hits"] == 1  # the plain source, once: its new bytes were compiled again
    assert said["warnings"] and {key: said[key] for key in fresh if key not in ("kept", "hits")} == {
        key: fresh[key] for key in fresh if key not in ("kept", "hits")}
    assert said["first"] == "as compiled" and said["saved"] == "saved again"
