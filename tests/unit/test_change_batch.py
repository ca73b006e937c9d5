"""What the reload server reads from the filesystem when a batch arrives (Reloader.describe_batch), the facts
the settle window is decided from: a changed file found gone or empty is a save still under way."""

from unstuck import config
from unstuck.reload.reloader import Reloader
from unstuck.seams.watchfiles_seam import Change


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
