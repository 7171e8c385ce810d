"""Export our packages as of another git revision into a directory, for `--baseline-rev`.

Only the packages leave git (`git archive`, read-only: no worktree is registered, nothing in
the checkout changes); the benchmark apps, the suite and the installed peers stay this
checkout's, so the two revisions serve the same app with the same dependencies and differ
only in the code under test.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("gunicorn_async_workers", "gaw")


class RevisionError(RuntimeError):
    """The revision is unknown to the repo, or lacks our package."""


def _git(*args: str) -> bytes:
    done = subprocess.run(["git", "-C", str(REPO_ROOT), *args], capture_output=True,
                          timeout=120, check=False)
    if done.returncode != 0:
        raise RevisionError(done.stderr.decode(errors="replace").strip() or f"git {args[0]} failed")
    return done.stdout


def resolve(rev: str) -> tuple[str, str]:
    """The full and the short commit id that `rev` names."""
    try:
        full = _git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}").decode().strip()
    except RevisionError:
        raise RevisionError(f"no commit {rev!r} in {REPO_ROOT}") from None
    short = _git("rev-parse", "--short", full).decode().strip()
    return full, short


def export(commit: str, dest: Path) -> list[str]:
    """Write the revision's packages under `dest`; return the ones it has."""
    names = _git("ls-tree", "--name-only", commit).decode().split()
    present = [name for name in PACKAGES if name in names]
    if PACKAGES[0] not in present:
        raise RevisionError(f"{commit[:12]} has no {PACKAGES[0]}/")
    archive = _git("archive", "--format=tar", commit, "--", *present)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        for member in tar.getmembers():
            target = (dest / member.name).resolve()
            if not target.is_relative_to(dest.resolve()):
                raise RevisionError(f"archive member {member.name!r} points out of {dest}")
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
            elif member.isfile():
                data = tar.extractfile(member)
                assert data is not None  # a regular file's member has its data
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data.read())
            # git archive writes links only where the tree has them; our packages have none
    return present
