"""Short alias of `gunicorn_async_workers`: `gunicorn -k gaw.UvloopWorker app:app`."""

from gunicorn_async_workers import (
    OPTIONS,
    AsyncioWorker,
    AsyncWorkerBase,
    ConfigError,
    H11Worker,
    UvloopWorker,
    __version__,
)

__all__ = ["OPTIONS", "AsyncWorkerBase", "AsyncioWorker", "ConfigError", "H11Worker",
           "UvloopWorker", "__version__"]
