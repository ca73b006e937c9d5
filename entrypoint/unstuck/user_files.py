"""Whether a path is under a directory, and whether a file is the user's: one answer for every process.

The error page's frames, a crash's parsed traceback, the modules a generation reports as the app's own,
the sys.path the warm process preloads with and the paths of a batch of changes all ask it. A plain
`startswith(str(app_dir))` takes /app2/x.py for a file of /app: the test is on whole path components.
"""

from __future__ import annotations

import os


def is_under(path: str, root) -> bool:
    """`path` is `root` or inside it, comparing the strings as they are (no file system access: cheap
    enough for every module in sys.modules)."""
    root = str(root).rstrip("/")
    return path == (root or "/") or path.startswith(root + "/")


def is_user_file(path: str, app_dir) -> bool:
    """The user's code: a file under APP_DIR (symlinks resolved on both sides), never an installed
    package (a virtualenv inside the project) and never "<frozen ...>" or "<string>"."""
    if not os.path.isabs(path) or "site-packages" in path:
        return False
    try:
        return is_under(os.path.realpath(path), os.path.realpath(app_dir))
    except (OSError, ValueError):
        return False
