"""URLs of the example Django project."""

from django.urls import path, re_path

from . import views

urlpatterns = [
    path("", views.hello),
    path("items", views.items),
    path("echo", views.echo),
    path("form", views.form),
    path("upload", views.upload),
    path("stream", views.stream),
    re_path(r"^static/(?P<path>.+)$", views.static_file),
]
