"""Saves made the way editors make them, from the host into the bind-mounted app."""

import os
from pathlib import Path


def save_in_place(path: Path, text: str) -> None:
    """Truncate and rewrite the same inode (nano, vim with backupcopy=yes, VS Code)."""
    with open(path, "w") as f:
        f.write(text)


def save_atomic(path: Path, text: str) -> None:
    """Write a temp file beside it, then rename over it (JetBrains safe write, many IDEs)."""
    tmp = path.with_name(f"{path.name}.tmp-unstuck-test")
    tmp.write_text(text)
    os.replace(tmp, path)


SAVES = {"in_place": save_in_place, "atomic": save_atomic}
