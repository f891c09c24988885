from django.apps import AppConfig


class ShortenerConfig(AppConfig):
    name = "apps.shortener"
    label = "shortener"
