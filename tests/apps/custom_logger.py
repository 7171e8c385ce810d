"""A `logger_class` whose access() appends one line per request to $GAW_TEST_ACCESS_RECORD."""

from __future__ import annotations

import os
from typing import Any

from gunicorn.glogging import Logger


class RecordingLogger(Logger):
    """Gunicorn's Logger, plus a record of every access() call in a plain file."""

    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
        super().access(resp, req, environ, request_time)
        path = os.environ.get("GAW_TEST_ACCESS_RECORD")
        if not path:
            return
        environ = environ or {}
        status = getattr(resp, "status", None)
        if isinstance(status, str):
            status = status.split(None, 1)[0]
        with open(path, "a") as f:
            f.write(f"{environ.get('REQUEST_METHOD')} {environ.get('RAW_URI')} {status}\n")
