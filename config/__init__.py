# Loads the Celery app with Django, so `@shared_task` binds to it (`celery -A config.celery`).
from config.celery import app as celery_app

__all__ = ("celery_app",)
