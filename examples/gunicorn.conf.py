"""A commented gunicorn.conf.py for gunicorn-async-workers.

Run: gunicorn -c examples/gunicorn.conf.py examples.hello:app
Every Gunicorn setting below means in our workers what it means in Gunicorn's own; every
option of ours is shown below at its default, so this file doubles as their list. Three of
them follow a Gunicorn setting and are left out of configure(...) here, so that Gunicorn's
setting (in this file or on the command line, e.g. --root-path /api) is the one that counts.
"""

import os

from gaw import UvloopWorker

bind = [os.environ.get("BIND", "127.0.0.1:8000")]
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))  # one per CPU: each runs one event loop

# Our own options (those Gunicorn has no name for) go through the worker class; each can
# also be set with a GAW_<NAME> environment variable (configure(...) wins over the variable),
# or as a top-level name in this file (`max_body_size = 1000000`).
# An unknown name or a bad value stops Gunicorn at boot with a one-line error (exit code 3).
worker_class = UvloopWorker.configure(
    # auto: detect ASGI 3, ASGI 2 or WSGI when the app loads; asgi3 | asgi2 | wsgi force it.
    interface="auto",
    # Seconds a client may take to send a whole request head (slow-loris guard).
    header_timeout=30,
    # Seconds a client may take to send a request body (slow-POST guard); 0: no limit.
    body_timeout=300,
    # Slow clients: a TLS handshake gets this many seconds; after `min_rate_grace` seconds a
    # request head or body must average these bytes/s (0: only the timeouts above apply).
    # At worker_connections, a new client replaces the connection making the least progress.
    tls_handshake_timeout=10,
    header_min_rate=500,
    body_min_rate=500,
    min_rate_grace=10,
    # Largest request body in bytes, larger ones get 413; 0: no limit.
    max_body_size=0,
    # HTTP/1.1 requests without Host: 400 (RFC 9112 3.2); False accepts them, as Gunicorn.
    require_host=True,
    # Graceful shutdown: an idle keep-alive connection is closed once idle this long.
    shutdown_idle_grace=0.25,
    # The Server response header; "" leaves it out.
    server_header="gunicorn",
    # True: each access-log line is one JSON object with every atom of access_log_format's
    # vocabulary (docs/logging.md); it still goes to `accesslog` (or logconfig_dict).
    access_log_json=False,
    # WebSocket messages queued for the app before the socket stops being read.
    ws_max_queue=32,
    # Seconds between server pings on an open WebSocket (0: none) ...
    ws_ping_interval=20,
    # ... and seconds to wait for the pong before closing with 1011 (0: forever).
    ws_ping_timeout=20,
    # Negotiate permessage-deflate compression with WebSocket clients.
    ws_per_message_deflate=True,
    # permessage-deflate: window bits offered (server, client), zlib memory and compression
    # levels; 12/12/5 use about half the memory of 15/15/8 per connection.
    ws_deflate_server_max_window_bits=12,
    ws_deflate_client_max_window_bits=12,
    ws_deflate_memory_level=5,
    ws_deflate_compression_level=6,
    # Prometheus metrics summed over the workers, served at this path on the bound sockets
    # (e.g. "/metrics"; needs the `prometheus` extra; docs/metrics.md); "": off.
    metrics_path="",
    # Their prometheus_client multiprocess directory; "": PROMETHEUS_MULTIPROC_DIR if set,
    # else a temporary one, removed when Gunicorn exits.
    metrics_dir="",
)
# Not set above: the options that follow a Gunicorn setting of their own (asgi_lifespan
# and root_path since Gunicorn 24, websocket_max_message_size and the HTTP/2 ones since 27,
# docs/http2.md). Set that setting
# instead; set in configure(...) too, our option would win over it (with a warning at
# boot). On a Gunicorn without the setting, use our option (configure(...), GAW_<NAME>, or
# a top-level name here: `root_path = "/api"` works on every version).
#   lifespan="auto"              -> asgi_lifespan = "auto"  (auto: run the ASGI lifespan if
#                                   the app supports it; on: require it; off: skip it)
#   root_path=""                 -> root_path = ""  (the ASGI root_path of an app mounted
#                                   under a prefix by a proxy, e.g. "/api")
#   ws_max_size=16 * 1024 * 1024 -> websocket_max_message_size = 16 * 1024 * 1024  (largest
#                                   WebSocket message in bytes, 0: no limit; larger: 1009)
#   http_protocols="h1"          -> http_protocols = "h1"  ("h2,h1": HTTP/2 too, over TLS by
#                                   ALPN; needs the `http2` extra)
#   http2_cleartext="off"        -> http2_cleartext = "off"  (h2c for trusted peers:
#                                   prior-knowledge, upgrade or both)
#   http2_max_concurrent_streams=100, http2_initial_window_size=65535,
#   http2_max_frame_size=16384, http2_max_header_list_size=65536 -> the settings of the
#                                   same names (HTTP/2 limits per connection and stream)
# Other classes take the same options: gaw.AsyncioWorker (stdlib asyncio, for debuggers and
# profilers) and gaw.H11Worker (the pure-Python h11 parser).

worker_connections = 1000   # at most this many connections per worker; above, stop accepting
threads = 1                 # WSGI apps: the size of each worker's thread pool
keepalive = 5               # seconds an idle keep-alive connection stays open
timeout = 30                # a worker silent this long is killed and replaced
graceful_timeout = 30       # SIGTERM: finish requests in flight within this many seconds
max_requests = 0            # >0: recycle a worker after this many requests (gracefully)
max_requests_jitter = 0
limit_request_line = 4094   # longer request line -> 414
limit_request_fields = 100  # more header fields -> 431
limit_request_field_size = 8190
forwarded_allow_ips = "127.0.0.1"  # peers whose X-Forwarded-Proto etc. are trusted
accesslog = None            # "-" for stdout; no access-log work at all when unset
