"""The WSGI thread pool: calls run in its threads, results come back on the loop in batches.

A real pool on a real event loop. The loop is kept from running while the threads finish
a burst of calls, so the hand-back finds them all waiting: they must come back in one
wake-up of the loop, in the order they finished, none lost, an exception as an exception.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

import pytest

from gunicorn_async_workers.wsgi.pool import ThreadPool

Result = TypeVar("Result")


class Call(Generic[Result]):
    """A job of the pool made of two functions (a WSGI request is the real one)."""

    def __init__(self, run: Callable[[], Result],
                 complete: Callable[[Result | None, BaseException | None], None]) -> None:
        self.run = run
        self.complete = complete


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.001)


def run_loop_until(loop: asyncio.AbstractEventLoop, condition: Callable[[], bool]) -> None:
    """Run the loop (which takes the pool's hand-backs) until `condition`, at most 5 s."""
    async def until() -> None:
        for _ in range(5000):
            if condition():
                return
            await asyncio.sleep(0.001)

    loop.run_until_complete(until())


def test_a_burst_of_finished_calls_wakes_the_loop_once() -> None:
    loop = asyncio.new_event_loop()
    pool: ThreadPool[int] = ThreadPool(1, loop)
    results: list[tuple[int | None, BaseException | None]] = []
    # The callbacks the threads scheduled on the (stdlib) loop, waiting for it to run.
    ready = loop._ready  # type: ignore[attr-defined]
    try:
        calls = 50
        for n in range(calls):
            pool.submit(Call(lambda n=n: n, lambda r, e: results.append((r, e))))
        # Submitting wakes no thread; the loop's next pass does, once (the dispatch is the
        # one callback waiting).
        assert len(ready) == 1 and pool.pending and not pool.finished
        loop.call_soon(loop.stop)
        loop.run_forever()
        # The loop is not running: the thread finishes every call and queues the batch.
        wait_until(lambda: len(pool.finished) == calls, "the burst finished in the thread")
        assert results == []
        assert len(ready) == 1  # one hand-back scheduled for the whole burst (was: 50)
        loop.run_until_complete(asyncio.sleep(0))
        assert results == [(n, None) for n in range(calls)]  # all in that one wake-up
    finally:
        pool.shutdown()
        loop.close()


def test_exceptions_come_back_and_a_failing_completion_drops_nothing() -> None:
    loop = asyncio.new_event_loop()
    reported: list[BaseException | None] = []
    loop.set_exception_handler(lambda _loop, context: reported.append(context.get("exception")))
    pool: ThreadPool[int] = ThreadPool(2, loop)
    outcomes: list[object] = []
    boom = ValueError("the app failed")

    def fail() -> int:
        raise boom

    def broken_done(result: int | None, exc: BaseException | None) -> None:
        raise RuntimeError("a completion that fails")

    try:
        pool.submit(Call(fail, lambda r, e: outcomes.append(e)))
        pool.submit(Call(lambda: 1, broken_done))
        pool.submit(Call(lambda: 2, lambda r, e: outcomes.append(r)))

        run_loop_until(loop, lambda: bool(len(outcomes) == 2 and reported))
        assert sorted(map(repr, outcomes)) == sorted([repr(boom), "2"])
        assert len(reported) == 1 and isinstance(reported[0], RuntimeError)
    finally:
        pool.shutdown()
        loop.close()


def test_calls_finishing_while_the_loop_hands_back_are_not_lost() -> None:
    """Threads keep finishing while the loop takes batches: every result arrives once."""
    loop = asyncio.new_event_loop()
    pool: ThreadPool[int] = ThreadPool(4, loop)
    seen: list[int] = []
    calls = 2000
    try:
        for n in range(calls):
            pool.submit(Call(lambda n=n: n, lambda r, e: seen.append(r)))  # type: ignore[arg-type]

        async def until_all() -> None:
            deadline = time.monotonic() + 10
            while len(seen) < calls and time.monotonic() < deadline:
                await asyncio.sleep(0.0005)

        loop.run_until_complete(until_all())
        assert sorted(seen) == list(range(calls))
    finally:
        pool.shutdown()
        loop.close()


def test_pool_threads_leave_process_signals_to_the_loops_thread() -> None:
    """A process signal must reach the thread that runs (and closes) the loop: one delivered
    to a pool thread while the loop closes is written to a closed wakeup pipe (a traceback
    on stderr, seen on a reload with a WSGI app)."""
    loop = asyncio.new_event_loop()
    pool: ThreadPool[set[signal.Signals]] = ThreadPool(2, loop)
    masks: list[set[signal.Signals] | None] = []
    try:
        for _ in range(2):
            pool.submit(Call(lambda: set(signal.pthread_sigmask(signal.SIG_BLOCK, [])),
                             lambda r, e: masks.append(r)))

        run_loop_until(loop, lambda: bool(len(masks) == 2))
        for mask in masks:
            assert mask is not None
            assert {signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP,
                    signal.SIGUSR1, signal.SIGABRT} <= mask
        assert signal.SIGTERM not in signal.pthread_sigmask(signal.SIG_BLOCK, [])
    finally:
        pool.shutdown()
        loop.close()


def test_a_blocked_call_does_not_hold_back_the_calls_queued_behind_it() -> None:
    """Four calls submitted in one pass wake one thread; the first blocks (an app waiting on
    I/O): the others must still run, on the threads it wakes when more calls wait."""
    loop = asyncio.new_event_loop()
    pool: ThreadPool[int] = ThreadPool(4, loop)
    release = threading.Event()
    done: list[int | None] = []
    try:
        pool.submit(Call(lambda: int(release.wait(10)), lambda r, e: done.append(r)))
        for n in range(2, 5):
            pool.submit(Call(lambda n=n: n, lambda r, e: done.append(r)))  # type: ignore[misc]

        async def until(count: int) -> None:
            deadline = time.monotonic() + 5
            while len(done) < count and time.monotonic() < deadline:
                await asyncio.sleep(0.001)

        loop.run_until_complete(until(3))
        assert sorted(n for n in done if n is not None) == [2, 3, 4]  # the first still waits
        release.set()
        loop.run_until_complete(until(4))
        assert sorted(n for n in done if n is not None) == [1, 2, 3, 4]
    finally:
        release.set()
        pool.shutdown()
        loop.close()


def test_calls_submitted_one_pass_at_a_time_are_never_stranded() -> None:
    """Threads park and are woken thousands of times, racing the loop's submissions: a call
    submitted just as a thread parks must still run (no lost wake-up)."""
    loop = asyncio.new_event_loop()
    pool: ThreadPool[int] = ThreadPool(3, loop)
    seen: list[int | None] = []
    rounds = 1500

    async def submit_in_passes() -> None:
        for n in range(rounds):
            pool.submit(Call(lambda n=n: n, lambda r, e: seen.append(r)))  # type: ignore[misc]
            if n % 3 == 0:
                await asyncio.sleep(0)  # a pass of the loop: the dispatch runs
            if n % 50 == 0:
                await asyncio.sleep(0.0002)  # let the threads run dry and park
        deadline = time.monotonic() + 10
        while len(seen) < rounds and time.monotonic() < deadline:
            await asyncio.sleep(0.0005)

    try:
        loop.run_until_complete(submit_in_passes())
        assert sorted(n for n in seen if n is not None) == list(range(rounds))
    finally:
        pool.shutdown()
        loop.close()


def test_shutdown_lets_every_thread_exit() -> None:
    loop = asyncio.new_event_loop()
    pool: ThreadPool[int] = ThreadPool(3, loop)
    try:
        wait_until(lambda: len(pool.parked) == 3, "the three threads parked")
        pool.shutdown()
        for thread in pool.threads:
            thread.join(5)
            assert not thread.is_alive()
    finally:
        loop.close()


class CountingPool(ThreadPool[Result]):
    """The pool, counting the threads it wakes."""

    wakes = 0

    def _wake_one(self) -> None:
        if self.parked:
            self.wakes += 1
        super()._wake_one()


def test_a_burst_of_calls_that_do_not_block_wakes_one_peer_not_every_thread() -> None:
    """Fifty quick calls in one pass, four parked threads: the dispatch wakes one, which
    wakes one peer in case its call blocks; the peer, until it comes back, stands for
    every later call (each woken thread costs two context switches, on a busy worker)."""
    loop = asyncio.new_event_loop()
    pool: CountingPool[int] = CountingPool(4, loop)
    seen: list[int | None] = []
    try:
        wait_until(lambda: len(pool.parked) == 4, "the four threads parked")
        for n in range(50):
            pool.submit(Call(lambda n=n: n, lambda r, e: seen.append(r)))  # type: ignore[misc]

        async def until_all() -> None:
            deadline = time.monotonic() + 5
            while len(seen) < 50 and time.monotonic() < deadline:
                await asyncio.sleep(0.001)

        loop.run_until_complete(until_all())
        assert sorted(n for n in seen if n is not None) == list(range(50))
        # Two; three if the OS held the first thread past the GIL's switch interval. Waking
        # a peer per call taken while others wait would make it four.
        assert pool.wakes <= 3, pool.wakes
    finally:
        pool.shutdown()
        loop.close()


@pytest.mark.skipif(not hasattr(os, "SCHED_BATCH"), reason="SCHED_BATCH is Linux's")
def test_pool_threads_run_under_sched_batch_and_the_loops_thread_does_not() -> None:
    """A woken pool thread must not preempt the loop's thread (which holds the GIL)."""
    loop = asyncio.new_event_loop()
    pool: ThreadPool[int] = ThreadPool(2, loop)
    policies: list[int | None] = []
    try:
        for _ in range(2):
            pool.submit(Call(lambda: os.sched_getscheduler(0), lambda r, e: policies.append(r)))

        run_loop_until(loop, lambda: bool(len(policies) == 2))
        assert policies == [os.SCHED_BATCH, os.SCHED_BATCH]
        assert os.sched_getscheduler(0) == os.SCHED_OTHER  # this thread ran the loop
    finally:
        pool.shutdown()
        loop.close()
