# The gunicorn-async-workers base image: Python, Gunicorn, our workers, uvloop and httptools,
# a non-root user, and a gunicorn.conf.py that reads its settings from the environment
# (docker/gunicorn.conf.py: PORT, WEB_CONCURRENCY, GRACEFUL_TIMEOUT, KEEPALIVE, LOG_LEVEL,
# ACCESS_LOG, APP_MODULE, ...). A user's image is two lines:
#
#     FROM gunicorn-async-workers
#     COPY . /app
#
# and serves `main:app` from /app on port 8000 (set APP_MODULE, or give the app as the
# command: `docker run IMAGE myapp:application`). Build: docker build -t gunicorn-async-workers .
ARG PYTHON_VERSION=3.12

# -- build the wheel (nothing of this stage but the wheel reaches the image) -------------------
FROM python:${PYTHON_VERSION}-slim AS wheel
# A C compiler for the one compiled module (http/compiled_head.c, built by setup.py); the
# image itself gets only the built wheel.
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml setup.py README.md LICENSE ./
COPY gunicorn_async_workers ./gunicorn_async_workers
COPY gaw ./gaw
RUN python -m pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

# -- the image ----------------------------------------------------------------------------------
FROM python:${PYTHON_VERSION}-slim
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PORT=8000
# uvloop and httptools come as binary wheels: no compiler in the image.
COPY --from=wheel /wheels /tmp/wheels
RUN python -m pip install /tmp/wheels/*.whl \
    && rm -rf /tmp/wheels \
    && python -c "import gaw, uvloop, httptools, gunicorn_async_workers.http.compiled_head"
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /home/app --create-home \
       --shell /usr/sbin/nologin app
COPY docker/gunicorn.conf.py /etc/gunicorn/gunicorn.conf.py
WORKDIR /app
USER 10001:10001
EXPOSE 8000
# Exec form: gunicorn is PID 1 and gets the engine's SIGTERM itself (a graceful stop that
# finishes requests in flight within GRACEFUL_TIMEOUT). Arguments after the image name are
# Gunicorn's: an app (`myapp:app`) or options (`-k gaw.AsyncioWorker`).
ENTRYPOINT ["gunicorn", "--config", "/etc/gunicorn/gunicorn.conf.py"]
CMD []
