"""The one compiled module: http/compiled_head.c, which reads the usual request head and
frames the usual response head in C.

Optional: where no C compiler is at hand the build goes on without it, and the package
reads and frames every head the long way (llhttp through Python callbacks, and
http/response.py), with the same results.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension(
    "gunicorn_async_workers.http.compiled_head",
    ["gunicorn_async_workers/http/compiled_head.c"],
    optional=True,
)])
