"""Settings of the example Django project: one module, no database, nothing to migrate."""

from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent

# For this example only: a real project reads its key from the environment.
SECRET_KEY = "example-only-not-secret-gunicorn-async-workers"
DEBUG = False
ALLOWED_HOSTS = ["*"]

INSTALLED_APPS: list[str] = []
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
]
ROOT_URLCONF = "examples.django_project.urls"
WSGI_APPLICATION = "examples.django_project.wsgi.application"
ASGI_APPLICATION = "examples.django_project.asgi.application"

DATABASES: dict[str, dict[str, str]] = {}
USE_TZ = True
# Django sets the process's TZ from this (its default is America/Chicago), which would also
# change the time zone of the worker's own log lines.
TIME_ZONE = "UTC"

# Served by views.static_file (django.views.static.serve) from STATIC_ROOT: no collectstatic.
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "static"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django": {"handlers": ["console"], "level": "WARNING"}},
}
