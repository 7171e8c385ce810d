"""A copy of the repo's files in a folder of its own, for tests of what a fresh clone does."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def copy_of_repo(into: Path) -> Path:
    """The repo's files (tracked and new, as git lists them; not .venv or caches) copied to
    `into/clone`."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, capture_output=True, check=True).stdout.split(b"\0")
    clone = into / "clone"
    for name in filter(None, listed):
        source = REPO / os.fsdecode(name)
        if source.is_file():
            target = clone / os.fsdecode(name)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return clone
