"""Password rules beyond Django's own validators (AUTH_PASSWORD_VALIDATORS in config/settings/identity.py)."""

from django.core.exceptions import ValidationError


class NotOnlyWhitespaceValidator:
    """Ten spaces pass every length check and are no password at all."""

    def validate(self, password: str, user: object = None) -> None:
        if not password.strip():
            raise ValidationError("This password is only spaces.", code="password_only_whitespace")

    def get_help_text(self) -> str:
        return "Your password can't be only spaces."
