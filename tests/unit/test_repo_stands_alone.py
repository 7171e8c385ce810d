"""The repo stands alone: no file names a folder outside the clone or a machine's absolute path
(a fresh clone anywhere must install, serve and pass its tests)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# A workplace's folders, the folder beside the checkout, or climbing out of it by parents[n].
OUTSIDE = re.compile(
    r"(?:^|[^A-Za-z0-9_.~])/(?:work|farm|root)/|\.\./shared\b|parents\[[3-9]\]"
    r"|\.parent\.parent\.parent")


def test_no_file_reaches_outside_the_clone() -> None:
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                             "--exclude-standard"], cwd=REPO, capture_output=True,
                            check=True).stdout.split(b"\0")
    me = Path(__file__).resolve()
    found = []
    for name in filter(None, listed):
        path = REPO / name.decode()
        if not path.is_file() or path.resolve() == me:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if OUTSIDE.search(line):
                found.append(f"{name.decode()}:{number}: {line.strip()[:120]}")
    assert not found, "\n".join(found[:20])
