"""The worker classes the benchmark suite's tests run once each, as the product's tests do."""

from __future__ import annotations

import pytest

from benchmarks.tests.running import WORKER_CLASSES


@pytest.fixture(params=WORKER_CLASSES)
def worker_class(request: pytest.FixtureRequest) -> str:
    return request.param
