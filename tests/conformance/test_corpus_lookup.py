"""The corpus lookup of tests/corpus.py, run from a copy of the repo in a folder of its own.

A clone anywhere (here: the repo's files copied under a temporary folder, with nothing beside
it) must fetch the corpus from the package index by itself; a corpus that cannot be had
skips its tests with one reason, and fails the run under CI.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from corpus import MANIFEST, SKIP_REASON
from repo_copy import copy_of_repo

# One test of each kind that needs the corpus: bytes only, and the PROXY headers' users.
NEEDS_CORPUS = "tests/unit/test_fuzz_parser.py::test_corpus_is_decoded"


def run_pytest(clone: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items()
               if k not in ("GAW_CONFORMANCE_CORPUS", "GAW_TEST_CACHE", "CI")
               and not k.startswith("PYTEST_")}
    environ.update(env)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
         "-rs", *args], cwd=clone, env=environ, capture_output=True, text=True, timeout=300,
        check=False)


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_of_repo(tmp_path_factory.mktemp("standalone"))


def test_a_copy_of_the_repo_fetches_the_corpus_itself(clone: Path) -> None:
    done = run_pytest(clone, NEEDS_CORPUS)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "1 passed" in done.stdout, done.stdout[-2000:]
    cached = clone / ".cache" / "gunicorn-27.0.1-requests"
    assert sorted(str(p.relative_to(cached)) for p in cached.rglob("*.http")) == sorted(
        entry["file"] for entry in MANIFEST)


def test_without_a_corpus_collection_works_and_its_tests_skip(clone: Path) -> None:
    collected = run_pytest(clone, "--co", GAW_CONFORMANCE_CORPUS="/nonexistent")
    assert collected.returncode == 0, collected.stdout[-3000:] + collected.stderr[-2000:]
    assert "error" not in collected.stdout.splitlines()[-1], collected.stdout[-1000:]

    done = run_pytest(clone, NEEDS_CORPUS, GAW_CONFORMANCE_CORPUS="/nonexistent")
    assert done.returncode == 0, done.stdout[-3000:]
    assert "1 skipped" in done.stdout and SKIP_REASON in done.stdout, done.stdout[-2000:]
    assert "GAW_CONFORMANCE_CORPUS=/nonexistent" in done.stdout, done.stdout[-2000:]


def test_under_ci_a_skip_for_want_of_the_corpus_fails_the_run(clone: Path) -> None:
    done = run_pytest(clone, NEEDS_CORPUS, GAW_CONFORMANCE_CORPUS="/nonexistent", CI="true")
    assert done.returncode == pytest.ExitCode.TESTS_FAILED, done.stdout[-3000:]
    assert "for want of the conformance corpus" in done.stdout, done.stdout[-2000:]
