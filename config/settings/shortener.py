"""Shortener: short links, their codes and password hashes; Redis for the redirect path."""

from config.env import env_float, env_int, env_str
from config.settings.base import *  # noqa: F403
from config.settings.base import CELERY_BEAT_SCHEDULE, INSTALLED_APPS, beat_every, database_for

SERVICE_NAME = "shortener"
ROOT_URLCONF = "config.urls.shortener"
DATABASES = {"default": database_for("shortener")}
READINESS_CHECKS = ["database", "cache", "broker"]

INSTALLED_APPS = [*INSTALLED_APPS, "ninja", "apps.events", "apps.shortener"]

# Short URLs are written on the apex (`/s/<code>` answers on every host).
APEX_URL = env_str("APEX_URL", "http://localhost:8000")
# The one call to the projects service (may this person share this task?), on create and list.
SHORTENER_PROJECTS_TIMEOUT = env_float("SHORTENER_PROJECTS_TIMEOUT", 3.0)
# Visits the gateway answered (shortener_visitinbox) become URLAccessed events this often, at the
# latest (`manage.py relay_visits` polls; it drains without pausing while there is a backlog).
SHORTENER_VISITS_POLL_SECONDS = env_float("SHORTENER_VISITS_POLL_SECONDS", 0.25)
# The expiry sweep: one URLExpired per link whose date has passed.
SHORTENER_EXPIRY_SWEEP_SECONDS = env_int("SHORTENER_EXPIRY_SWEEP_SECONDS", 30)
CELERY_BEAT_SCHEDULE = {
    **CELERY_BEAT_SCHEDULE,
    "links-expire-due": beat_every("apps.shortener.tasks.links_expire_due", SHORTENER_EXPIRY_SWEEP_SECONDS),
}
