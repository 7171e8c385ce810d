"""Whether the package's compiled module (http/compiled_head.c) was built, for the tests.

`pip install -e .` builds it with the interpreter's C compiler; without one the install goes
on and every head is read the long way. A developer's run may live with that; CI (which has
a compiler) may not: tests that need the module skip with SKIP_REASON, which CI fails on.
"""

from __future__ import annotations

from types import ModuleType

import pytest

SKIP_REASON = "the compiled head reader was not built (no C compiler at `pip install -e .`)"
# For tests/unit/test_compiled_head_sanitized.py: gcc's sanitizer runtimes come with it.
SANITIZER_SKIP_REASON = "no C compiler with AddressSanitizer and UBSan runtimes here"


def require() -> ModuleType:
    """The compiled module, or the test skips with SKIP_REASON."""
    try:
        from gunicorn_async_workers.http import compiled_head
    except ImportError:
        pytest.skip(SKIP_REASON)
    return compiled_head
