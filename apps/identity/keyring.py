"""The signing key ring: the key that signs now, made on first use, and rotation.

Writes, kept out of services.py so that token encoding (apps/identity/tokens.py) can reach
them without importing the services that issue tokens. The key material itself (generation,
PEM, JWK) is apps/identity/keys.py; the reads (current key, JWKS) are in selectors.py.
"""

import logging

from django.db import connection, transaction
from django.utils import timezone

from apps.identity import selectors
from apps.identity.keys import jwk_thumbprint, private_key_to_pem, public_key_to_pem, rsa_private_key_generate
from apps.identity.models import SigningKey

logger = logging.getLogger(__name__)

# pg_advisory_xact_lock key serializing key creation across processes ("IDKEYS" in ASCII).
_SIGNING_KEY_LOCK = 0x49444B455953


def _signing_key_create() -> SigningKey:
    private_key = rsa_private_key_generate()
    public_key = private_key.public_key()
    return SigningKey.objects.create(
        kid=jwk_thumbprint(public_key),
        private_key_pem=private_key_to_pem(private_key),
        public_key_pem=public_key_to_pem(public_key),
    )


def _lock_signing_keys() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_SIGNING_KEY_LOCK])


def signing_key_ensure() -> SigningKey:
    """The key that signs now; the first call on an empty database makes one."""
    key = selectors.signing_key_current()
    if key is not None:
        return key
    with transaction.atomic():
        _lock_signing_keys()
        return selectors.signing_key_current() or _signing_key_create()


def signing_key_rotate() -> SigningKey:
    """A new key signs from now on; the old ones stay in the JWKS until their tokens have expired."""
    with transaction.atomic():
        _lock_signing_keys()
        new_key = _signing_key_create()
        SigningKey.objects.filter(retired_at=None).exclude(pk=new_key.pk).update(retired_at=timezone.now())
    logger.info("signing key rotated", extra={"kid": new_key.kid})
    return new_key
