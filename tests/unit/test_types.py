"""The type check: mypy, as pyproject.toml's `[tool.mypy]` sets it (strict, both packages),
finds no error; the package's `type: ignore` comments are few, each with its error code and
its reason."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("gunicorn_async_workers", "gaw")
IGNORE = re.compile(r"#\s*type:\s*ignore\b(?P<code>\[[^\]]*\])?(?P<after>.*)$")


def test_mypy_finds_no_error(tmp_path: Path) -> None:
    """`python -m mypy` with the project's settings; mypy comes with the test extras. The
    cache is this test's own (a fresh one: mypy checks the package in seconds)."""
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "mypy-cache")],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert "Success: no issues found" in result.stdout, result.stdout


def type_ignores() -> list[tuple[str, bool, bool]]:
    """(file:line, has an error code, says why) of each `type: ignore` in the packages.
    The reason is a comment after it on its line, or a comment line right above the
    statement (above any lines that are themselves ignored)."""
    found = []
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            lines = path.read_text(encoding="utf-8").splitlines()
            for index, line in enumerate(lines):
                match = IGNORE.search(line)
                if match is None:
                    continue
                above = index - 1
                while above >= 0 and IGNORE.search(lines[above]):
                    above -= 1
                why = ("#" in match.group("after")
                       or (above >= 0 and lines[above].lstrip().startswith("#")))
                found.append((f"{path.relative_to(REPO)}:{index + 1}",
                              match.group("code") is not None, why))
    return found


def test_type_ignores_are_few_and_explained() -> None:
    found = type_ignores()
    assert [where for where, coded, _ in found if not coded] == []
    assert [where for where, _, why in found if not why] == []
    assert len(found) < 5, [where for where, _, _ in found]
