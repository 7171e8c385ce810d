"""Run the suite's entry points for real from a test, every file they write under the test's
own directory, and read what they wrote."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from gunicorn.config import KNOWN_SETTINGS

REPO = Path(__file__).resolve().parents[2]

# The product tests' worker classes (GAW_TEST_WORKER_CLASSES narrows them) and their names in
# the suite.
WORKER_CLASSES = os.environ.get(
    "GAW_TEST_WORKER_CLASSES", "gaw.UvloopWorker,gaw.AsyncioWorker,gaw.H11Worker").split(",")
CONFIG_NAMES = {"gaw.UvloopWorker": "gaw", "gaw.AsyncioWorker": "gaw-asyncio",
                "gaw.H11Worker": "gaw-h11"}

# The suite's Gunicorn commands pass --no-control-socket; its own venv pins a Gunicorn that has it.
needs_control_socket_flag = pytest.mark.skipif(
    not any(s.name == "control_socket_disable" for s in KNOWN_SETTINGS),
    reason="the benchmark suite's Gunicorn commands need --no-control-socket")


def run_module(module: str, args: list[str], timeout: float) -> subprocess.CompletedProcess:
    """`module.main(args)` in a child of this interpreter from the repo root, as `python -m`
    runs it but without the bootstrap into the suite's own venv (the peers are not needed)."""
    code = f"import sys\nfrom {module} import main\nsys.exit(main(sys.argv[1:]))\n"
    return subprocess.run([sys.executable, "-c", code, *args], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout, check=False)


def written(out: Path) -> dict[str, Any]:
    """The run's latest.json in `out`, or {} when it wrote none."""
    path = out / "latest.json"
    return json.loads(path.read_text()) if path.exists() else {}


def tail(done: subprocess.CompletedProcess) -> str:
    """The end of a run's output, for an assertion's message."""
    return done.stdout[-2000:] + done.stderr[-2000:]
