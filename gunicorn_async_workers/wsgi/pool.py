"""The thread pool WSGI apps run on: a C queue in, the loop's `call_soon_threadsafe` out.

Leaner than `concurrent.futures` plus `run_in_executor` for one hand-off per request: no
executor future, no asyncio future wrapping it, no task on the loop. A request waits in the
queue (not in a thread) until a thread is free. The threads are daemons: a worker that must
exit is never held by an app stuck in one of them (the arbiter's timeout handles that).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from queue import SimpleQueue
from typing import Generic, TypeVar

Result = TypeVar("Result")


class ThreadPool(Generic[Result]):
    """`size` threads running submitted calls; each result is handed back on the loop.

    Every call of a pool returns a `Result` (the WSGI bridge's: `bytes | None`)."""

    def __init__(self, size: int, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.queue: SimpleQueue[
            tuple[Callable[[], Result],
                  Callable[[Result | None, BaseException | None], None]] | None] = SimpleQueue()
        self.threads = [threading.Thread(target=self._work, name=f"gaw-wsgi-{i}", daemon=True)
                        for i in range(size)]
        for thread in self.threads:
            thread.start()

    def submit(self, call: Callable[[], Result],
               done: Callable[[Result | None, BaseException | None], None]) -> None:
        """Run `call()` in a thread; then `done(result, None)` or `done(None, exc)` on the loop."""
        self.queue.put((call, done))

    def _work(self) -> None:
        queue = self.queue
        call_soon = self.loop.call_soon_threadsafe
        while True:
            item = queue.get()
            if item is None:
                return
            call, done = item
            try:
                result = call()
            except BaseException as exc:  # handed to the loop, which logs it
                try:
                    call_soon(done, None, exc)
                except RuntimeError:  # the loop is closed: the worker is exiting
                    return
            else:
                try:
                    call_soon(done, result, None)
                except RuntimeError:
                    return

    def shutdown(self) -> None:
        for _ in self.threads:
            self.queue.put(None)
