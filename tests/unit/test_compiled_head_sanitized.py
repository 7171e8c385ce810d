"""The compiled module under AddressSanitizer and UndefinedBehaviorSanitizer.

The C side reads bytes straight from the network, so its memory safety is tested, not
assumed: http/compiled_head.c is built again here with `-fsanitize=address,undefined`, and
the differential and random-bytes tests of test_compiled_head.py and the parser fuzz tests
run in a child Python that loads that build in place of the installed one. Any read past a
buffer, use after free or undefined arithmetic aborts the child, and the test fails with
the sanitizer's report.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import compiled_module
import pytest

REPO = Path(__file__).resolve().parents[2]
SOURCE = REPO / "gunicorn_async_workers" / "http" / "compiled_head.c"
# Loads the sanitized build as the package's compiled module, then runs pytest.
CHILD = """
import importlib.util, sys
import pytest
spec = importlib.util.spec_from_file_location(
    "gunicorn_async_workers.http.compiled_head", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
sys.modules[spec.name] = module
from gunicorn_async_workers.http import parsers, response
assert parsers.compiled_scan is module.scan and response.compiled_frame is module.frame
sys.exit(pytest.main(sys.argv[2:]))
"""


def runtime(compiler: str, name: str) -> str | None:
    """The path of a sanitizer's runtime library, as the compiler knows it."""
    found = subprocess.run([compiler, f"-print-file-name={name}"], capture_output=True,
                           text=True, timeout=30).stdout.strip()
    return found if os.path.isabs(found) and os.path.exists(found) else None


@pytest.mark.timeout(300)
def test_the_compiled_module_is_memory_safe_under_the_fuzz_tests(tmp_path: Path) -> None:
    compiled_module.require()
    compiler = shutil.which(sysconfig.get_config_var("CC").split()[0]) or shutil.which("gcc")
    libraries = [runtime(compiler, n) for n in ("libasan.so", "libubsan.so")] if compiler \
        else []
    if not compiler or not all(libraries):
        pytest.skip(compiled_module.SANITIZER_SKIP_REASON)
    built = tmp_path / f"compiled_head{sysconfig.get_config_var('EXT_SUFFIX')}"
    build = subprocess.run(
        [compiler, "-shared", "-fPIC", "-O1", "-g", "-fno-omit-frame-pointer",
         "-fsanitize=address,undefined", "-fno-sanitize-recover=undefined",
         f"-I{sysconfig.get_paths()['include']}", str(SOURCE), "-o", str(built)],
        capture_output=True, text=True, timeout=120)
    assert build.returncode == 0, build.stderr[-3000:]
    # PYTHONMALLOC=malloc: every object its own malloc block, so that a read past a bytes
    # object's end is past an allocation ASan knows (not inside one of pymalloc's arenas).
    env = {**os.environ, "LD_PRELOAD": ":".join(str(lib) for lib in libraries),
           "PYTHONMALLOC": "malloc",
           "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=1",
           "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1"}
    tests = [str(REPO / "tests" / "unit" / name) for name in (
        "test_compiled_head.py", "test_fuzz_parser.py", "test_parser_differences.py",
        "test_response.py")]
    child = subprocess.run(
        # -s: the sanitizer writes its report to fd 2, which pytest would capture and lose
        [sys.executable, "-c", CHILD, str(built), "-q", "-s", "-p", "no:cacheprovider",
         "-n", "0", "--rootdir", str(REPO), *tests],
        capture_output=True, text=True, timeout=280, env=env, cwd=str(REPO))
    found = child.stderr.find("Sanitizer")  # the sanitizer's report, where it wrote one
    report = child.stdout[-3000:] + (child.stderr[max(found - 200, 0):found + 3000]
                                     if found >= 0 else child.stderr[-3000:])
    assert child.returncode == 0, report
    assert " passed" in child.stdout and "Sanitizer" not in child.stderr, report
