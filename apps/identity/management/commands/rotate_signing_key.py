from typing import Any

from django.core.management.base import BaseCommand

from apps.identity import keyring


class Command(BaseCommand):
    help = "Make a new token signing key; older keys stay in the JWKS until the tokens they signed expire."

    def handle(self, *args: Any, **options: Any) -> None:
        key = keyring.signing_key_rotate()
        self.stdout.write(f"new signing key {key.kid}")
