"""The thread pool WSGI apps run on: batches of calls in, batches of finished calls out.

Leaner than `concurrent.futures` plus `run_in_executor` for one hand-off per request: no
executor future, no asyncio future wrapping it, no task on the loop, and no thread woken per
request. A request waits in the pool's queue (not in a thread) until a thread is free. The
threads are daemons: a worker that must exit is never held by an app stuck in one of them
(the arbiter's timeout handles that).
The threads block the process signals the worker handles, so the kernel always delivers
those to the loop's thread (which blocks them while its loop closes). On Linux they run
under SCHED_BATCH (`batch_scheduling`): a pool thread woken for work never preempts the
loop's thread, which holds the GIL and would take the CPU straight back.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
import time
from collections import deque
from typing import Generic, Protocol, TypeVar

Result = TypeVar("Result")


class Job(Protocol[Result]):
    """What the pool runs: `run()` in a thread, then `complete()` on the loop with its result
    (or with the exception it raised). A WSGI request is its own job: nothing is allocated
    per request to submit it."""

    def run(self) -> Result: ...

    def complete(self, result: Result | None, exc: BaseException | None) -> None: ...

# The signals Gunicorn sends a worker (and a terminal may): a pool thread never takes them.
PROCESS_SIGNALS = frozenset({
    signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP, signal.SIGUSR1,
    signal.SIGUSR2, signal.SIGWINCH, signal.SIGABRT, signal.SIGTTIN, signal.SIGTTOU,
    signal.SIGCHLD,
})


def batch_scheduling() -> None:
    """Put the calling thread under Linux's SCHED_BATCH policy, where it exists.

    A woken SCHED_BATCH thread waits for the running thread to block or use up its slice
    instead of preempting it at once. A pool thread woken while the loop's thread reads
    requests could only wait for the GIL the loop holds: with the preemption each wake-up
    cost two context switches more (0.23 per request under load, 0.05 with this policy;
    benchmarks/results/sched-batch/). The share of CPU a thread gets is the same under
    either policy. Where the policy is missing (not Linux) or refused (a sandbox), the
    thread keeps the default.
    """
    policy = getattr(os, "SCHED_BATCH", None)
    if policy is not None:
        with contextlib.suppress(OSError):
            os.sched_setscheduler(0, policy, os.sched_param(0))


class ThreadPool(Generic[Result]):
    """`size` threads running submitted calls; each result is handed back on the loop.

    Every call of a pool returns a `Result` (the WSGI bridge's: `bytes | None`). Both hops
    are batched, so that a busy worker pays for a thread wake-up per batch, not per request:

    - In: `submit` (on the loop) appends to `pending`; once per pass of the loop, after the
      callbacks that read requests, `_dispatch` wakes one parked thread unless a woken one
      is on its way. A thread takes calls from `pending` until it is empty, and wakes a
      parked peer when it takes a call while more are waiting and no woken peer is on its
      way yet (an app that blocks on I/O then does not hold the others back, and an app
      that does not block wakes one peer per batch, not one per call). A busy thread is
      never woken: it comes back for the next call itself.
    - Out: finished calls wait in `finished`, and the loop is woken once per batch: a thread
      that finishes while a hand-back is already scheduled only appends to the batch.

    A thread parks on a lock of its own (the cheapest wake-up CPython has: one futex call),
    kept in `parked`; every shared structure is a deque or list used under the GIL.
    """

    def __init__(self, size: int, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.pending: deque[Job[Result]] = deque()
        # The locks of the threads waiting for work, each held: releasing one wakes its thread.
        self.parked: list[threading.Lock] = []
        # The locks of threads woken that have not yet come back for a call: while one is
        # on its way, a thread taking a call wakes nobody (it will take the next one).
        self.standby: list[threading.Lock] = []
        self.dispatch_scheduled = False
        self.stopping = False
        self.finished: deque[tuple[Job[Result], Result | None, BaseException | None]] = deque()
        # True from a thread's scheduling of `_hand_back` until that call begins (it is only
        # an optimisation: a call scheduled twice finds the batch empty the second time).
        self.hand_back_scheduled = False
        # The job each thread runs now: its thread's ident -> (when it began, monotonic
        # clock; the job), for the stuck-request warning.
        self.running: dict[int, tuple[float, Job[Result]]] = {}
        self.threads = [threading.Thread(target=self._work, name=f"gaw-wsgi-{i}", daemon=True)
                        for i in range(size)]
        for thread in self.threads:
            thread.start()

    def submit(self, job: Job[Result]) -> None:
        """Run `job.run()` in a thread; then `job.complete(result, None)`, or
        `job.complete(None, exc)`, on the loop. Called on the loop only."""
        self.pending.append(job)
        if not self.dispatch_scheduled:
            self.dispatch_scheduled = True
            self.loop.call_soon(self._dispatch)

    def _dispatch(self) -> None:
        """On the loop, once per pass: wake a parked thread for the calls submitted, unless
        a woken one is on its way already (it takes them)."""
        self.dispatch_scheduled = False
        if self.pending and not self.standby:
            self._wake_one()

    def _wake_one(self) -> None:
        try:
            lock = self.parked.pop()  # the last to park: the warmest
        except IndexError:
            return  # every thread is busy; each comes back for more when done
        self.standby.append(lock)
        lock.release()

    def _take(self, lock: threading.Lock) -> Job[Result] | None:
        """The next call for this thread, parking it while there is none; None to exit."""
        pending = self.pending
        parked = self.parked
        while True:
            if pending:
                item = pending.popleft()
                if pending and parked and not self.standby:
                    self._wake_one()
                return item
            if self.stopping:
                return None
            parked.append(lock)
            # A call submitted (and dispatched to nobody) between the check above and the
            # append: take it back instead of parking.
            if pending or self.stopping:
                try:
                    parked.remove(lock)
                except ValueError:  # someone released it already: consume that wake-up
                    lock.acquire()
                    self._back_from_standby(lock)
                continue
            lock.acquire()  # until a submit or shutdown releases it
            self._back_from_standby(lock)

    def _back_from_standby(self, lock: threading.Lock) -> None:
        if lock in self.standby:  # (only its own thread takes a lock out of `standby`)
            self.standby.remove(lock)

    def _work(self) -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, PROCESS_SIGNALS)
        batch_scheduling()
        lock = threading.Lock()
        lock.acquire()
        take = self._take
        finished = self.finished
        call_soon = self.loop.call_soon_threadsafe
        hand_back = self._hand_back
        running = self.running
        ident = threading.get_ident()
        clock = time.monotonic
        while True:
            job = take(lock)
            if job is None:
                return
            running[ident] = (clock(), job)
            try:
                finished.append((job, job.run(), None))
            except BaseException as exc:  # handed to the loop, which logs it
                finished.append((job, None, exc))
            del running[ident]
            if not self.hand_back_scheduled:
                self.hand_back_scheduled = True
                try:
                    call_soon(hand_back)
                except RuntimeError:  # the loop is closed: the worker is exiting
                    return

    def _hand_back(self) -> None:
        """On the loop: every finished job's `complete`, in the order they finished."""
        self.hand_back_scheduled = False  # before taking: a later finish schedules anew
        finished = self.finished
        while finished:
            job, result, exc = finished.popleft()
            try:
                job.complete(result, exc)
            except Exception as error:  # as the loop would report a failing callback
                self.loop.call_exception_handler({
                    "message": "Exception in a WSGI request's completion", "exception": error})

    def shutdown(self) -> None:
        """Let the threads exit once the calls already submitted have run."""
        self.stopping = True
        while self.parked:
            self._wake_one()
