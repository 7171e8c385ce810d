"""Create or reuse benchmarks/.venv with the pinned peers and our project, and install wrk
(and nginx, for the static reference, and h2load, for the HTTP/2 workloads)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from benchmarks import nginx

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
VENV = BENCH_DIR / ".venv"
REQUIREMENTS = BENCH_DIR / "requirements.txt"
STAMP = VENV / ".benchmarks-installed"


def venv_python() -> Path:
    """The benchmark venv's interpreter."""
    return VENV / "bin" / "python"


def in_venv() -> bool:
    """True when this interpreter is the benchmark venv's."""
    return Path(sys.prefix).resolve() == VENV.resolve()


def fingerprint() -> str:
    """Changes whenever the pins or the project metadata change."""
    digest = hashlib.sha256()
    for path in (REQUIREMENTS, REPO_ROOT / "pyproject.toml"):
        digest.update(path.read_bytes() if path.exists() else b"-")
    return digest.hexdigest()


def _venv_works() -> bool:
    """True when the venv's interpreter exists and starts (its base Python may be gone)."""
    try:
        done = subprocess.run([str(venv_python()), "-c", "pass"], capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def _run(command: list[str], **kwargs: object) -> None:
    print("+ " + " ".join(command), flush=True)
    subprocess.run(command, check=True, **kwargs)  # type: ignore[call-overload]


def ensure_venv(reinstall: bool = False) -> None:
    """Create the venv if missing; (re)install pins and the project when they changed."""
    if not _venv_works():
        _run([sys.executable, "-m", "venv", "--clear", str(VENV)])
    current = STAMP.read_text().strip() if STAMP.exists() else ""
    wanted = fingerprint()
    if current == wanted and not reinstall:
        return
    pip = [str(venv_python()), "-m", "pip", "--disable-pip-version-check", "install", "-q"]
    _run([*pip, "-r", str(REQUIREMENTS)])
    _run([*pip, "-e", str(REPO_ROOT)])
    STAMP.write_text(wanted + "\n")


def _can_apt() -> bool:
    """True when this process may install Debian packages."""
    return os.geteuid() == 0 and shutil.which("apt-get") is not None


def ensure_tools(with_nginx: bool = False, with_h2load: bool = False) -> None:
    """Install wrk with apt-get when missing; fail clearly when taskset is missing. With
    `with_nginx`, also install nginx when missing: not required, the suite leaves out the
    nginx reference when it still is, and its preflight says why. With `with_h2load` the same
    for h2load (Debian's nghttp2-client) and the h2 workloads."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    updated = False
    if shutil.which("wrk") is None:
        if not _can_apt():
            raise SystemExit("wrk is missing: install it (e.g. `sudo apt-get install wrk`)")
        _run(["apt-get", "update"], env=env)
        updated = True
        _run(["apt-get", "install", "-y", "wrk"], env=env)
    if shutil.which("taskset") is None:
        raise SystemExit("taskset is missing: install util-linux")
    if with_nginx and nginx.binary() is None and _can_apt():
        # Debian's `nginx` holds the binary (`nginx-light` only adds a module to it)
        with contextlib.suppress(subprocess.CalledProcessError):
            if not updated:
                _run(["apt-get", "update"], env=env)
            _run(["apt-get", "install", "-y", "nginx"], env=env)
            updated = True
    if with_h2load and shutil.which("h2load") is None and _can_apt():
        with contextlib.suppress(subprocess.CalledProcessError):
            if not updated:
                _run(["apt-get", "update"], env=env)
            _run(["apt-get", "install", "-y", "nghttp2-client"], env=env)


def prepare_and_reexec(argv: list[str], module: str = "benchmarks", tools: bool = True,
                       with_nginx: bool = False, with_h2load: bool = False) -> None:
    """Make the venv (and, with `tools`, wrk, with `with_nginx` nginx and with `with_h2load`
    h2load too) ready; re-run `-m module` inside the venv if needed."""
    ensure_venv(reinstall="--reinstall" in argv)
    if tools:
        ensure_tools(with_nginx, with_h2load)
    if not in_venv():
        args = [a for a in argv if a != "--reinstall"]
        os.chdir(REPO_ROOT)
        os.execv(str(venv_python()), [str(venv_python()), "-m", module, *args])
