"""The README's benchmark table is what `python -m benchmarks.landing` makes of the result file
it names: generated, never edited by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import landing
from benchmarks.tests.running import REPO


def test_the_readme_table_is_generated_from_the_result_file_it_names() -> None:
    found = landing.current((REPO / "README.md").read_text())
    assert found is not None, "README.md has no benchmark table"
    block, source = found
    assert (REPO / source).is_file(), f"README's table names {source}, which is not in the repo"
    assert block == landing.block(source), (
        f"README's table differs from {source}'s: python -m benchmarks.landing {source} "
        "--write README.md")


def test_the_check_fails_on_an_edited_table_and_write_restores_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    readme = tmp_path / "README.md"
    original = (REPO / "README.md").read_text()
    readme.write_text(original.replace("| plaintext | uvicorn-worker | ",
                                       "| plaintext | uvicorn-worker | 9", 1))
    assert landing.main(["--check", str(readme)]) == 1
    assert "the benchmark table is not what" in capsys.readouterr().err
    _, source = landing.current(original) or ("", "")
    assert landing.main([source, "--write", str(readme)]) == 0
    assert readme.read_text() == original
    assert landing.main(["--check", str(readme)]) == 0
