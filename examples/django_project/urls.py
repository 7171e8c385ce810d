"""URLs of the example Django project."""

from django.conf import settings
from django.urls import path, re_path
from django.views.static import serve

from . import views

urlpatterns = [
    path("", views.hello),
    path("items", views.items),
    path("echo", views.echo),
    path("form", views.form),
    path("upload", views.upload),
    path("stream", views.stream),
    # Fine for an example; in production a web server or WhiteNoise serves static files.
    re_path(r"^static/(?P<path>.+)$", serve, {"document_root": settings.STATIC_ROOT}),
]
