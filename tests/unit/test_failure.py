import json

from unstuck.errors import failure, frames


def test_syntax_error_points_at_file_and_line(project):
    f = project.failure_of("x = 1\ndef broken(:\n    pass\n")
    assert (f.exc_type, f.file, f.line) == ("SyntaxError", "pkg/mod.py", 2)
    assert f.headline() == "SyntaxError: invalid syntax (pkg/mod.py:2)"
    assert "def broken(:" in f.traceback


def test_missing_import_points_at_the_import_line(project):
    f = project.failure_of("import os\nimport no_such_module_here\n")
    assert (f.exc_type, f.file, f.line) == ("ModuleNotFoundError", "pkg/mod.py", 2)
    assert "no_such_module_here" in f.message


def test_exception_traceback_starts_in_user_code(project):
    f = project.failure_of("def f():\n    raise RuntimeError('boom')\n\nf()\n")
    assert (f.exc_type, f.message, f.file, f.line) == ("RuntimeError", "boom", "pkg/mod.py", 2)
    assert "importlib" not in f.traceback
    assert f.traceback.splitlines()[1].strip().startswith(f'File "{project.root}/pkg/mod.py", line 4')


def test_round_trips_through_dict(project):
    f = project.failure_of("import no_such_module_here\n")
    assert f.frames and f.hint
    assert failure.Failure.from_dict(json.loads(json.dumps(f.to_dict()))) == f


def test_an_older_dict_without_frames_still_loads():
    old = {"phase": "import", "exc_type": "SyntaxError", "message": "m", "file": "a.py", "line": 1, "traceback": "t"}
    f = failure.Failure.from_dict(old)
    assert (f.frames, f.frames_omitted, f.hint, f.where()) == ([], 0, None, "a.py:1")


# -- frames -------------------------------------------------------------------------------------------

LIBRARY = "def parse(text):\n    value = int(text)\n    return value\n"
USER = "".join(f"line_{n} = {n}\n" for n in range(1, 11)) + "import fakelib\nresult = fakelib.parse('x')\nafter = 1\n"


def test_user_frames_and_library_frames_are_told_apart(project):
    f = project.failure_of(USER, fakelib=LIBRARY)
    assert (f.exc_type, f.file, f.line) == ("ValueError", "pkg/mod.py", 12)
    assert [(fr["file"], fr["line"], fr["function"], fr["user"]) for fr in f.frames] == [
        ("pkg/mod.py", 12, "<module>", True), (str(project.lib / "fakelib.py"), 2, "parse", False)]
    assert [fr["failing"] for fr in f.frames] == [True, False]


def test_the_failing_frame_carries_five_lines_either_side(project):
    f = project.failure_of(USER, fakelib=LIBRARY)
    user = f.failing_frame()
    assert user["context_start"] == 7
    assert user["context"] == ["line_7 = 7", "line_8 = 8", "line_9 = 9", "line_10 = 10", "import fakelib",
                               "result = fakelib.parse('x')", "after = 1"]
    # The failing expression, columns 1-based and end-exclusive like SyntaxError's offsets.
    line = user["context"][user["line"] - user["context_start"]]
    assert line[user["column"] - 1:user["end_column"] - 1] == "fakelib.parse('x')"
    library = f.frames[1]
    assert (library["context_start"], library["context"]) == (1, LIBRARY.splitlines())


def test_syntax_error_carries_its_line_and_offset(project):
    f = project.failure_of("x = 1\ny = [1, 2\nz = 3\n")
    frame = f.failing_frame()
    assert (frame["file"], frame["line"], frame["user"]) == ("pkg/mod.py", 2, True)
    assert frame["context"] == ["x = 1", "y = [1, 2", "z = 3"]
    assert frame["context"][1][frame["column"] - 1] == "["  # "'[' was never closed" points at the bracket


def test_an_edited_file_is_read_again(project):
    # A SyntaxError's file is in no frame of its traceback: nothing but unstuck refreshes its cached lines.
    project.failure_of("a = (\n")
    f = project.failure_of("b = 2\nc = [\n")
    assert f.failing_frame()["context"] == ["b = 2", "c = ["]


def test_a_deep_recursion_with_huge_lines_stays_small(project):
    # 500+ frames, each line of the source 100 KB of non-ASCII text (6 bytes per character in JSON).
    huge = "é" * 100_000
    source = "".join(f"x{n} = '{huge}'\n" for n in range(6)) + f"def f(n):\n    return f(n + 1)  # {huge}\n\nf(0)\n"
    f = project.failure_of(source)
    assert f.exc_type == "RecursionError"
    size = len(json.dumps(f.to_dict()))
    assert size < 24 * 1024, size
    assert len(f.frames) == frames.MAX_FRAMES and f.frames_omitted > 400
    failing = f.failing_frame()
    assert failing is f.frames[-1] and failing["line"] == 8
    assert failing["context"][failing["line"] - failing["context_start"]].startswith("    return f(n + 1)  # éé")
    assert failing["context"][0].endswith("…")
    assert f.frames[0]["function"] == "<module>"  # where the recursion began is kept


def test_a_huge_message_and_traceback_are_clipped_wherever_the_failure_is_built():
    f = failure.Failure("startup", "LifespanStartupFailed", "m" * 100_000, traceback="start\n" + "x" * 1_000_000 + "\nend")
    assert len(json.dumps(f.to_dict())) < 8 * 1024
    assert f.message.endswith("…") and f.traceback.startswith("start\n") and f.traceback.endswith("\nend")
    assert failure.Failure.from_dict(f.to_dict()) == f
