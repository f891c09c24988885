"""Reads. Nothing here writes."""

import hashlib
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone

from apps.identity.keys import public_jwk, public_key_from_pem
from apps.identity.models import Invitation, Membership, Organization, Role, SigningKey, User
from apps.identity.roles import ADMIN_ROLES, PERMISSIONS


@dataclass(frozen=True)
class Access:
    """What a user may do in one organization."""

    roles: tuple[str, ...]
    permissions: tuple[str, ...]

    def allows(self, code: str) -> bool:
        return code in self.permissions


NO_ACCESS = Access(roles=(), permissions=())


def parse_tenant_id(value: object) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError, AttributeError):
        return None


def organization_get(*, tenant_id: object) -> Organization | None:
    parsed = parse_tenant_id(tenant_id)
    if parsed is None:
        return None
    return Organization.objects.filter(id=parsed).first()


def membership_get(*, user_id: object, tenant_id: object) -> Membership | None:
    parsed = parse_tenant_id(tenant_id)
    if parsed is None:
        return None
    return (
        Membership.objects.select_related("role", "user", "organization")
        .filter(user_id=user_id, organization_id=parsed, user__is_active=True)
        .first()
    )


def access_of_membership(membership: Membership | None) -> Access:
    if membership is None:
        return NO_ACCESS
    known = [code for code in membership.role.permissions if code in PERMISSIONS]
    return Access(roles=(membership.role.name,), permissions=tuple(sorted(known)))


def access_get(*, user_id: object, tenant_id: object) -> Access:
    return access_of_membership(membership_get(user_id=user_id, tenant_id=tenant_id))


def is_organization_admin(*, user: User, tenant_id: object) -> bool:
    membership = membership_get(user_id=user.pk, tenant_id=tenant_id)
    return membership is not None and membership.role.name in ADMIN_ROLES


def membership_list(*, organization: Organization) -> QuerySet[Membership]:
    return Membership.objects.select_related("user", "role").filter(organization=organization).order_by("user__email")


def invitation_list_pending(*, organization: Organization) -> QuerySet[Invitation]:
    return invitation_list_open(organization=organization).filter(expires_at__gt=timezone.now())


def invitation_list_open(*, organization: Organization) -> QuerySet[Invitation]:
    """Invitations neither accepted nor revoked, newest first: pending ones, and expired ones that may be resent."""
    return (
        Invitation.objects.select_related("role", "organization", "invited_by")
        .filter(organization=organization, accepted_at=None, revoked_at=None)
        .order_by("-created_at", "-id")
    )


def invitation_get(*, organization: Organization, invitation_id: object) -> Invitation | None:
    return (
        Invitation.objects.select_related("role", "organization", "invited_by")
        .filter(organization=organization, pk=invitation_id)
        .first()
    )


def invitation_token_hash(raw_token: str) -> str:
    return hashlib.sha256(raw_token.encode()).hexdigest()


def invitation_get_pending(*, raw_token: str) -> Invitation | None:
    invitation = (
        Invitation.objects.select_related("organization", "role")
        .filter(token_hash=invitation_token_hash(raw_token))
        .first()
    )
    return invitation if invitation is not None and invitation.is_pending else None


def user_get_by_email(*, email: str) -> User | None:
    return User.objects.filter(email=email.strip().lower()).first()


def organizations_of(*, user: User) -> list[Organization]:
    return list(Organization.objects.filter(memberships__user=user).order_by("slug"))


def role_list(*, organization: Organization) -> QuerySet[Role]:
    return Role.objects.filter(organization=organization).order_by("id")


def role_get(*, organization: Organization, name: str) -> Role | None:
    return Role.objects.filter(organization=organization, name=name).first()


def signing_key_current() -> SigningKey | None:
    return SigningKey.objects.filter(retired_at=None).order_by("-created_at", "-id").first()


def _verification_window() -> timedelta:
    """How long a retired key must still verify: the longest-lived token it may have signed."""
    return max(settings.JWT_ACCESS_LIFETIME, settings.JWT_REFRESH_LIFETIME) + timedelta(seconds=settings.JWT_LEEWAY)


def verification_key_get(*, kid: str) -> SigningKey | None:
    if not kid:
        return None
    cutoff = timezone.now() - _verification_window()
    return SigningKey.objects.filter(Q(retired_at=None) | Q(retired_at__gt=cutoff), kid=kid).first()


def signing_keys_published() -> list[SigningKey]:
    """Keys in the JWKS: the current one, and retired ones whose access tokens may not have expired yet."""
    cutoff = timezone.now() - settings.JWT_ACCESS_LIFETIME - timedelta(seconds=settings.JWT_LEEWAY)
    return list(SigningKey.objects.filter(Q(retired_at=None) | Q(retired_at__gt=cutoff)).order_by("-created_at"))


def jwks_document() -> dict:
    keys = [public_jwk(public_key_from_pem(key.public_key_pem), kid=key.kid) for key in signing_keys_published()]
    return {"keys": keys}


def public_key_for_kid(kid: str) -> object | None:
    """The key resolver apps.common.auth uses inside identity: the database instead of HTTP."""
    key = verification_key_get(kid=kid)
    return None if key is None else public_key_from_pem(key.public_key_pem)
