"""WSGI entry point of every service's HTTP (gunicorn); DJANGO_SETTINGS_MODULE names the service."""

from django.core.wsgi import get_wsgi_application

from config.entrypoint import settings_module_required

settings_module_required("config.wsgi")

application = get_wsgi_application()
