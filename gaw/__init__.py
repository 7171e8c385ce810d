"""Short alias of `gunicorn_async_workers`: `gunicorn -k gaw.UvloopWorker app:app`."""

from gunicorn_async_workers import (
    OPTIONS,
    AsyncioWorker,
    AsyncWorkerBase,
    ConfigError,
    UvloopWorker,
    __version__,
)

__all__ = ["OPTIONS", "AsyncWorkerBase", "AsyncioWorker", "ConfigError", "UvloopWorker",
           "__version__"]
