"""Email verification links: signed, expiring, and bound to the account's unverified state.

    token = verification_token_make(user=user)
    user = verification_token_user(token=token)   # None if forged, expired, or already used

The token is Django's TimestampSigner over {"u": user id, "s": state}, where the state is an HMAC
of the user id, the address and `email_verified_at`. Verifying sets `email_verified_at`, which
changes the state, so a link works once. The state deliberately leaves out the password and
`last_login`: whoever typed the address at signup controls those, and must not be able to kill
the real owner's link by signing in or changing the password.
"""

from django.conf import settings
from django.core import signing
from django.utils.crypto import constant_time_compare, salted_hmac

from apps.identity.models import User

_SALT = "apps.identity.email-verification"


def _state(user: User) -> str:
    verified = user.email_verified_at.isoformat() if user.email_verified_at else "-"
    return salted_hmac(_SALT, f"{user.pk}|{user.email}|{verified}").hexdigest()[:24]


def _signer() -> signing.TimestampSigner:
    return signing.TimestampSigner(salt=_SALT, sep=".")


def verification_token_make(*, user: User) -> str:
    return _signer().sign_object({"u": user.pk, "s": _state(user)})


def verification_token_user(*, token: object) -> User | None:
    """The active, unverified account the token was made for, while it is fresh; else None."""
    if not isinstance(token, str) or not token or len(token) > 512:
        return None
    try:
        payload = _signer().unsign_object(token, max_age=settings.EMAIL_VERIFICATION_LIFETIME)
    except (signing.BadSignature, ValueError):
        return None
    if not isinstance(payload, dict) or not isinstance(payload.get("u"), int) or not isinstance(payload.get("s"), str):
        return None
    user = User.objects.filter(pk=payload["u"], is_active=True, email_verified_at=None).first()
    if user is None or not constant_time_compare(payload["s"], _state(user)):
        return None
    return user
