"""A commented gunicorn.conf.py for gunicorn-async-workers.

Run: gunicorn -c examples/gunicorn.conf.py examples.hello:app
Every Gunicorn setting below means in our workers what it means in Gunicorn's own.
"""

import os

from gaw import UvloopWorker

bind = [os.environ.get("BIND", "127.0.0.1:8000")]
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))

# Our own options (those Gunicorn has no name for) go through the worker class;
# each can also be set with a GAW_<NAME> environment variable.
worker_class = UvloopWorker.configure(
    lifespan="auto",           # auto | on | off (defaults to Gunicorn's asgi_lifespan)
    header_timeout=30,         # seconds a client may take to send a request head
    shutdown_idle_grace=0.25, # idle keep-alive connections closed after this on shutdown
)

worker_connections = 1000   # at most this many connections per worker; above, stop accepting
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
