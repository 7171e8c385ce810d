"""nginx as the suite's static reference: where its binary is, the nginx.conf that answers the
plaintext and json requests with the apps' bodies from constants, and its command line.

nginx runs no app: `return 200 '<body>'` in a `location` is about the least CPU a server can
spend on such a request, the floor the app servers' CPU per request is read against.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from benchmarks.apps import asgi_apps

# Debian installs it in /usr/sbin, which a user's PATH may not hold
SBIN_NGINX = Path("/usr/sbin/nginx")
CONF_NAME = "nginx.conf"
ERROR_LOG_NAME = "error.log"
# wrk's connections are never recycled within a run (nginx's default closes one every 1,000)
KEEPALIVE_REQUESTS = 1_000_000
# the workloads it answers: the constant bodies, not the ones needing an app (echo, stream…)
WORKLOADS = ("plaintext", "json", "wsgi-plaintext", "wsgi-json")


def body_of_json() -> bytes:
    """The json body, byte for byte as both apps serialise it on every request."""
    return json.dumps(asgi_apps.JSON_PAYLOAD, separators=(",", ":")).encode("utf-8")


# path -> (content type, body): what the apps send on those paths
RESPONSES: dict[str, tuple[str, bytes]] = {
    "/plaintext": ("text/plain", asgi_apps.PLAINTEXT_BODY),
    "/json": ("application/json", body_of_json()),
}


def binary() -> str | None:
    """The nginx executable, on PATH or in /usr/sbin; None when it is not installed."""
    found = shutil.which("nginx")
    if found is not None:
        return found
    return str(SBIN_NGINX) if SBIN_NGINX.is_file() else None


def unavailable_reason() -> str | None:
    """None when nginx is installed, else why the reference cannot run."""
    if binary() is not None:
        return None
    return ("nginx is not installed (neither on PATH nor in /usr/sbin); the bootstrap installs "
            "Debian's nginx package with apt-get when run as root")


def version() -> str:
    """nginx's version (e.g. 1.22.1), or 'not installed'."""
    found = binary()
    if found is None:
        return "not installed"
    try:
        done = subprocess.run([found, "-v"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    # `nginx -v` prints "nginx version: nginx/1.22.1" on stderr
    words = (done.stdout + done.stderr).split()
    return words[-1].removeprefix("nginx/") if words else "unknown"


def _quoted(body: bytes) -> str:
    """body as a single-quoted nginx string; a body nginx would read otherwise is refused."""
    text = body.decode("ascii")
    if any(c in text for c in "'\\$") or not text.isprintable():
        raise ValueError(f"{body!r} needs escaping in nginx.conf; only plain text is written")
    return f"'{text}'"


def conf(host: str, port: int, keepalive_s: int, backlog: int, connections: int) -> str:
    """The nginx.conf: one worker, no access log, the given keep-alive, listen backlog and
    connection cap; every relative path is in the prefix directory (`-p`)."""
    locations = "".join(
        f"        location = {path} {{\n"
        f"            default_type {content_type};\n"
        f"            return 200 {_quoted(body)};\n"
        "        }\n"
        for path, (content_type, body) in RESPONSES.items()
    )
    return (
        "# the benchmark suite's static reference (benchmarks/nginx.py); written per run\n"
        "worker_processes 1;\n"
        "daemon off;\n"
        "master_process on;\n"
        "pid nginx.pid;\n"
        "lock_file nginx.lock;\n"
        f"error_log {ERROR_LOG_NAME} warn;\n"
        "\n"
        "events {\n"
        f"    worker_connections {connections};\n"
        "}\n"
        "\n"
        "http {\n"
        "    access_log off;\n"
        f"    keepalive_timeout {keepalive_s}s;\n"
        f"    keepalive_requests {KEEPALIVE_REQUESTS};\n"
        # nginx makes these at start; Debian's defaults (/var/lib/nginx) need root
        "    client_body_temp_path client_body;\n"
        "    proxy_temp_path proxy;\n"
        "    fastcgi_temp_path fastcgi;\n"
        "    uwsgi_temp_path uwsgi;\n"
        "    scgi_temp_path scgi;\n"
        "\n"
        "    server {\n"
        f"        listen {host}:{port} backlog={backlog};\n"
        f"{locations}"
        "        location / {\n"
        "            return 404;\n"
        "        }\n"
        "    }\n"
        "}\n"
    )


def command(workdir: Path) -> list[str]:
    """nginx in the foreground with `workdir` as its prefix, reading the nginx.conf there."""
    return [binary() or "nginx", "-p", f"{workdir}/", "-c", str(workdir / CONF_NAME)]
