"""What the reload server reads from the filesystem when a batch arrives (Reloader.describe_batch), the facts
the settle window is decided from: a changed file found gone or empty is a save still under way; what each
file reads as, to tell more events of a save delivered already from a new save."""

import os
from types import SimpleNamespace

from unstuck import config
from unstuck.reload.reloader import Reloader
from unstuck.seams.watchfiles_seam import Change
from unstuck.watching.fingerprint import fingerprint


def described(tmp_path, *changes):
    settings = config.load({"APP_DIR": str(tmp_path), "UNSTUCK_RUN_DIR": str(tmp_path / "run")}, check_dirs=False)
    return Reloader(settings).describe_batch({(kind, str(tmp_path / rel)) for kind, rel in changes})


def test_a_truncated_file_and_a_file_renamed_away_are_half_done_saves(tmp_path):
    (tmp_path / "main.py").write_text("")  # an in-place save between its truncation and its write
    batch = described(tmp_path, (Change.modified, "main.py"), (Change.deleted, "views.py"))
    assert batch.half_done == {"main.py", "views.py"}
    assert batch.paths == {("modified", "main.py"), ("deleted", "views.py")} and not batch.new_dir


def test_a_written_file_and_a_new_directory_are_not(tmp_path):
    (tmp_path / "main.py").write_text("app = None\n")
    (tmp_path / "pkg").mkdir()
    batch = described(tmp_path, (Change.modified, "main.py"), (Change.added, "pkg"))
    assert batch.half_done == frozenset() and batch.new_dir


def test_a_file_reads_the_same_until_it_is_written_or_touched(tmp_path):
    main = tmp_path / "main.py"
    main.write_text("app = 'v1'\n")
    first = dict(described(tmp_path, (Change.modified, "main.py")).fingerprints)["main.py"]
    assert first is not None
    assert dict(described(tmp_path, (Change.modified, "main.py")).fingerprints)["main.py"] == first
    main.write_text("app = 'v2'\n")
    second = dict(described(tmp_path, (Change.modified, "main.py")).fingerprints)["main.py"]
    assert second != first
    os.utime(main)  # touch: a reload, as with uvicorn --reload
    assert dict(described(tmp_path, (Change.modified, "main.py")).fingerprints)["main.py"] != second


def test_two_saves_of_one_size_read_apart_on_a_share_with_coarse_times(tmp_path):
    def coarse(path):  # a share that keeps whole seconds, and this second for both saves
        st = os.stat(path)
        return SimpleNamespace(st_mode=st.st_mode, st_size=st.st_size, st_ino=st.st_ino,
                               st_mtime_ns=10**18, st_ctime_ns=10**18)

    main = tmp_path / "main.py"
    main.write_text("app = 'v1'\n")
    first = fingerprint(str(main), coarse(str(main)), stat_of=coarse)
    main.write_text("app = 'v2'\n")
    assert first is not None and fingerprint(str(main), coarse(str(main)), stat_of=coarse) != first
