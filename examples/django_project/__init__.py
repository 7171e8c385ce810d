"""A minimal Django project served by gunicorn-async-workers both as WSGI and as ASGI.

    gunicorn -k gaw.UvloopWorker examples.django_project.wsgi:application
    gunicorn -k gaw.UvloopWorker examples.django_project.asgi:application

Run from the repository root. No database and no migrations: the settings have
`DATABASES = {}` and no installed apps that need tables.
"""
