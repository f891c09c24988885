from django.apps import AppConfig


class IdentityConfig(AppConfig):
    name = "apps.identity"
    label = "identity"

    def ready(self) -> None:
        # Registers the OpenAPI extension for the platform's JWT authentication (drf-spectacular).
        from apps.identity import openapi  # noqa: F401
