"""Analytics: raw events, counters and rollups in MongoDB. No relational database."""

from config.env import env_str
from config.settings.base import *  # noqa: F403
from config.settings.base import INSTALLED_APPS, TEMPLATES

SERVICE_NAME = "analytics"
ROOT_URLCONF = "config.urls.analytics"
DATABASES: dict = {}
READINESS_CHECKS = ["mongo", "cache", "broker"]
MONGO_DB_NAME = env_str("MONGO_DB_NAME", "analytics")

# Without a relational database there is nothing for auth's models to live in.
INSTALLED_APPS = [app for app in INSTALLED_APPS if app != "django.contrib.auth"]
INSTALLED_APPS = [*INSTALLED_APPS, "ninja", "apps.analytics"]
TEMPLATES[0]["OPTIONS"]["context_processors"] = ["django.template.context_processors.request"]
