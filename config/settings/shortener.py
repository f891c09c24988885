"""Shortener: short links, their codes and password hashes; Redis for the redirect path."""

from config.settings.base import *  # noqa: F403
from config.settings.base import INSTALLED_APPS, database_for

SERVICE_NAME = "shortener"
ROOT_URLCONF = "config.urls.shortener"
DATABASES = {"default": database_for("shortener")}
READINESS_CHECKS = ["database", "cache", "broker"]

INSTALLED_APPS = [*INSTALLED_APPS, "ninja", "apps.events", "apps.shortener"]
