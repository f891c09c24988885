"""Celery jobs of the shortener (beat-shortener schedules them: config/settings/shortener.py)."""

from celery import shared_task

from apps.shortener import services


@shared_task
def links_expire_due() -> int:
    return services.links_expire_due()
