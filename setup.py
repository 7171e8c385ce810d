"""The one compiled module: http/compiled_head.c, a C reading of the usual request head.

Optional: where no C compiler is at hand the build goes on without it, and the package
reads every head the long way (llhttp through Python callbacks), with the same results.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension(
    "gunicorn_async_workers.http.compiled_head",
    ["gunicorn_async_workers/http/compiled_head.c"],
    optional=True,
)])
