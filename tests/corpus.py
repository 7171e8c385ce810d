"""Gunicorn's HTTP/1.x request corpus for the tests: found once, fetched and checked if needed.

The corpus is the `tests/requests/` folder (`valid/` and `invalid/` `.http` files) of
Gunicorn's own source distribution. The repo holds only what we expect of each file
(`tests/conformance/manifest.json`: the decoded length and SHA-256 of its wire bytes and what
a parser must make of them); the files themselves come from the pinned sdist on the package
index, downloaded with `pip download --require-hashes`, checked by hash again here, and
unpacked into a cache folder inside the clone (`.cache/`, or `$GAW_TEST_CACHE`). Set
`GAW_CONFORMANCE_CORPUS` to a folder with `valid/` and `invalid/` to use that instead.

Where the corpus cannot be had, every test that needs it skips with one reason starting with
`SKIP_REASON`; under CI (`CI=true`) tests/conftest.py turns such skips into a failed run.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
MANIFEST_FILE = TESTS / "conformance" / "manifest.json"
MANIFEST: list[dict[str, Any]] = json.loads(MANIFEST_FILE.read_text())

# The sdist the corpus comes from, pinned by version and by the package index's SHA-256.
REQUIREMENT = "gunicorn==27.0.1"
SDIST = "gunicorn-27.0.1.tar.gz"
SDIST_SHA256 = "b1514965361c8b7e8107a80aa2a92636878df1ccfac6dd204a676426e04d9e3e"
MEMBER_PREFIX = PurePosixPath("gunicorn-27.0.1/tests/requests")
OVERRIDE = "GAW_CONFORMANCE_CORPUS"
SKIP_REASON = "conformance corpus unavailable"
# pip resolving one sdist takes seconds; a hung index must not hang the suite.
DOWNLOAD_TIMEOUT = 300.0
_HEX_ESCAPE = re.compile(rb"\\x([0-9A-Fa-f]{2})")


def cache_root() -> Path:
    return Path(os.environ.get("GAW_TEST_CACHE") or REPO / ".cache")


def decode(text: bytes) -> bytes:
    """The wire bytes of a `.http` file, decoded the way Gunicorn's tests/treq.py does: the
    file's own newlines dropped, then the escapes `\\r\\n`, `\\0`, `\\n`, `\\t`, `\\xHH`."""
    data = text.replace(b"\n", b"")
    data = data.replace(b"\\r\\n", b"\r\n")
    data = data.replace(b"\\0", b"\x00").replace(b"\\n", b"\n").replace(b"\\t", b"\t")
    data = _HEX_ESCAPE.sub(lambda m: bytes([int(m.group(1), 16)]), data)
    if b"\\" in data:
        raise ValueError("a backslash is left after decoding")
    return data


class CorpusUnavailable(Exception):
    """The corpus could not be found or fetched; the message says why, in one line."""


def _check_folder(folder: Path) -> Path:
    missing = [e["file"] for e in MANIFEST if not (folder / e["file"]).is_file()]
    if missing:
        raise CorpusUnavailable(
            f"{folder} lacks {len(missing)} of the manifest's {len(MANIFEST)} files "
            f"(first: {missing[0]})")
    return folder


def _download_sdist(into: Path) -> Path:
    """The pinned sdist from the package index, through pip, checked by its hash."""
    requirements = into / "requirements.txt"
    requirements.write_text(f"{REQUIREMENT} --hash=sha256:{SDIST_SHA256}\n")
    try:
        done = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
             "--no-binary", ":all:", "--require-hashes", "-r", str(requirements),
             "-d", str(into)],
            capture_output=True, text=True, timeout=DOWNLOAD_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CorpusUnavailable(f"`pip download {REQUIREMENT}` failed: {exc}") from exc
    sdist = into / SDIST
    if done.returncode != 0 or not sdist.is_file():
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise CorpusUnavailable(f"`pip download {REQUIREMENT}` failed: {last}")
    digest = hashlib.sha256(sdist.read_bytes()).hexdigest()
    if digest != SDIST_SHA256:
        raise CorpusUnavailable(f"{SDIST} has SHA-256 {digest}, expected {SDIST_SHA256}")
    return sdist


def _unpack_requests(sdist: Path, into: Path) -> None:
    """Only the `.http` files under tests/requests/, each written by us (no link, no path
    outside `into`)."""
    with tarfile.open(sdist) as archive:
        for member in archive.getmembers():
            path = PurePosixPath(member.name)
            if not (member.isfile() and path.suffix == ".http"
                    and path.is_relative_to(MEMBER_PREFIX)):
                continue
            relative = path.relative_to(MEMBER_PREFIX)
            if ".." in relative.parts or len(relative.parts) != 2:
                continue
            source = archive.extractfile(member)
            assert source is not None
            target = into.joinpath(*relative.parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read())


def _fetch(cache: Path) -> Path:
    """The cached corpus, downloaded first if it is not there yet. A lock file keeps parallel
    test processes from fetching it twice; the folder appears whole or not at all."""
    cache.parent.mkdir(parents=True, exist_ok=True)
    with open(cache.parent / f"{cache.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if cache.is_dir():
            return cache
        with tempfile.TemporaryDirectory(dir=cache.parent) as scratch:
            work = Path(scratch)
            sdist = _download_sdist(work)
            unpacked = work / "requests"
            _unpack_requests(sdist, unpacked)
            _check_folder(unpacked)
            unpacked.rename(cache)
    return cache


@functools.cache
def locate() -> Path | str:
    """The corpus folder, or the one-line reason it cannot be had (looked up once per test
    process)."""
    try:
        override = os.environ.get(OVERRIDE)
        if override:
            return _check_folder(Path(override))
        cache = cache_root() / f"{SDIST.removesuffix('.tar.gz')}-requests"
        return _check_folder(_fetch(cache))
    except CorpusUnavailable as exc:
        source = f"{OVERRIDE}={os.environ[OVERRIDE]}" if os.environ.get(OVERRIDE) else REQUIREMENT
        return f"{exc} (source: {source})"
    except OSError as exc:
        return f"{exc}"


def corpus_dir() -> Path:
    """The corpus folder; skips the calling test, with the reason, where there is none."""
    found = locate()
    if isinstance(found, str):
        pytest.skip(f"{SKIP_REASON}: {found}")
    return found


def wire_bytes(entry: dict[str, Any]) -> bytes:
    """One manifest entry's request bytes, checked against the manifest's length and hash."""
    data = decode((corpus_dir() / entry["file"]).read_bytes())
    assert len(data) == entry["wire_bytes"], f"{entry['file']}: decoded length differs"
    assert hashlib.sha256(data).hexdigest() == entry["wire_sha256"], (
        f"{entry['file']}: decoded bytes differ from the manifest")
    return data


@functools.cache
def all_requests() -> list[bytes]:
    """Every corpus file's wire bytes, in manifest order."""
    return [wire_bytes(entry) for entry in MANIFEST]

