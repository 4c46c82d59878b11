"""WSGI entry point for gunicorn: `gunicorn wsgi:app`."""

from taskdriver import create_app

app = create_app()
