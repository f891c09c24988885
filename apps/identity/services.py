"""Writes: every change to users, memberships, roles, invitations and tokens goes through here.

Signing keys are written by apps/identity/keyring.py; the refusals are apps.common.exceptions'
classes and apps/identity/errors.py's.

Functions are keyword-only; the ones that change state another service cares about publish
an event through the outbox inside the same transaction.
"""

import logging
import math
import secrets
import smtplib
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.contrib.auth.password_validation import validate_password
from django.core import mail
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone
from rest_framework_simplejwt.exceptions import TokenError

from apps.common.auth import revocation_redis, revoked_jti_key
from apps.common.exceptions import Conflict, Forbidden, InvalidInput, NotFound, RateLimited, ServiceError
from apps.identity import selectors
from apps.identity.errors import BAD_CREDENTIALS_MESSAGE, InvalidCredentials, InvalidRefreshToken, LoginThrottled
from apps.identity.models import Invitation, Membership, Organization, RefreshToken, Role, User
from apps.identity.roles import DEFAULT_ROLE_PERMISSIONS, PERMISSIONS, ProjectRole, RoleName
from apps.identity.throttling import login_attempt_begin, login_attempt_succeeded, verification_mail_slot_take
from apps.identity.tokens import PlatformAccessToken, PlatformRefreshToken, PresentedAccess, TokenPair
from apps.identity.verification import verification_token_make, verification_token_user

logger = logging.getLogger(__name__)


def _emit(event_type: str, data: dict, *, tenant_id: object, actor_id: object, aggregate_id: object) -> None:
    # Looked up per call, so tests can watch the outbox by patching apps.events.outbox.publish.
    from apps.events.outbox import publish

    publish(
        event_type,
        data,
        tenant_id=None if tenant_id is None else str(tenant_id),
        actor_id=None if actor_id is None else str(actor_id),
        aggregate_id=str(aggregate_id),
    )


def _permission_changed(
    *,
    user_id: int,
    organization: Organization,
    actor_id: object,
    reason: str,
    project_id: int | None = None,
    project_role: str = "",
) -> None:
    """The user's new rights in the organization, with their name and address (the projects service keeps
    a directory of the organization's people from it), and the project an accepted invitation named."""
    membership = selectors.membership_get(user_id=user_id, tenant_id=organization.id)
    access = selectors.access_of_membership(membership)
    user = membership.user if membership is not None else User.objects.filter(pk=user_id).first()
    data: dict[str, object] = {
        "user_id": str(user_id),
        "tenant_id": str(organization.id),
        "roles": list(access.roles),
        "permissions": list(access.permissions),
        "reason": reason,
        "full_name": user.full_name if user is not None else "",
        "email": user.email if user is not None else "",
    }
    if project_id is not None:
        data["project_id"] = int(project_id)
        data["project_role"] = project_role or ProjectRole.MEMBER
    _emit("UserPermissionChanged", data, tenant_id=organization.id, actor_id=actor_id, aggregate_id=user_id)


def _normalized_email(email: object) -> str:
    value = str(email or "").strip().lower()
    try:
        validate_email(value)
    except ValidationError:
        raise InvalidInput("Enter a valid email address", fields={"email": ["Enter a valid email address."]}) from None
    return value


def _check_password_strength(password: object, *, email: str, full_name: str = "", field: str = "password") -> str:
    """Django's validators (AUTH_PASSWORD_VALIDATORS); every reason is listed under `fields[field]`."""
    if not isinstance(password, str) or not password:
        raise InvalidInput("A password is required", fields={field: ["This field is required."]})
    try:
        validate_password(password, user=User(email=email, full_name=full_name))
    except ValidationError as exc:
        reasons = list(exc.messages)
        raise InvalidInput(f"The password is not accepted: {' '.join(reasons)}", fields={field: reasons}) from None
    return password


def _mail_send(*, subject: str, message: str, to: str) -> None:
    """One message through the SMTP backend. A mail outage never undoes the change that wanted the mail."""
    try:
        mail.send_mail(subject=subject, message=message, from_email=settings.DEFAULT_FROM_EMAIL, recipient_list=[to])
    except (smtplib.SMTPException, OSError):
        logger.exception("mail not sent", extra={"subject": subject})


# Sessions and revocation


def _access_jtis_revoke(tokens: Iterable[tuple[str, datetime | None]]) -> None:
    """`revoked-jti:<jti>` for each still-valid access token (CONTRACT: revoked access tokens)."""
    now = timezone.now()
    entries = []
    for jti, expires_at in tokens:
        if not jti or expires_at is None:
            continue
        ttl = math.ceil((expires_at - now).total_seconds()) + settings.JWT_LEEWAY
        if ttl > 0:
            entries.append((revoked_jti_key(jti), ttl))
    if not entries:
        return
    try:
        with revocation_redis(settings.REDIS_URL).pipeline(transaction=False) as pipe:
            for key, ttl in entries:
                pipe.set(key, "1", ex=ttl)
            pipe.execute()
    except Exception:  # a Redis outage must not stop the refresh tokens' revocation, which is in the database
        logger.exception("access tokens not revoked in Redis", extra={"count": len(entries)})


def access_token_revoke(*, jti: str, expires_at: int) -> None:
    """Ends one access token now (logout presents it) instead of at its `exp`."""
    _access_jtis_revoke([(jti, _expiry(expires_at))])


def _users_lock(user_ids: Iterable[object]) -> None:
    """Row locks on the users, taken before their refresh tokens are touched (always in this order).

    Issuing a pair and ending sessions both hold the user's lock, so a token issued concurrently
    with a logout, a password change or a verification is either seen and revoked by it, or is
    issued after it and checked against the new password: none slips through between the two.
    """
    ids = sorted({int(user_id) for user_id in user_ids})
    if ids:
        list(User.objects.select_for_update().filter(pk__in=ids).order_by("pk").values_list("pk", flat=True))


def _sessions_end(rows: QuerySet[RefreshToken]) -> int:
    """Revokes these refresh tokens and every access token issued beside them that has not expired."""
    with transaction.atomic():
        _users_lock(rows.values_list("user_id", flat=True).distinct())
        now = timezone.now()
        live_access = list(rows.filter(access_expires_at__gt=now).values_list("access_jti", "access_expires_at"))
        ended = rows.filter(revoked_at=None).update(revoked_at=now)
    # Redis is written when this block ends, which may be before an outer transaction commits: a
    # rollback after it leaves the access tokens revoked early. That fails safe (a new sign-in).
    _access_jtis_revoke(live_access)
    return ended


def user_sessions_end(*, user: User) -> int:
    """Every session of the person, in every organization: refresh tokens and live access tokens."""
    return _sessions_end(RefreshToken.objects.filter(user=user))


def refresh_tokens_purge(*, older_than: timedelta = timedelta(days=1), chunk: int = 5_000) -> int:
    """Deletes the rows of refresh tokens that expired more than `older_than` ago; returns how many.

    Such a token is refused by its signature's `exp` before its row is looked at, so the row
    decides nothing any more: not reuse (the family's live tokens keep their own rows), not
    revocation. A row goes only once the access token issued beside it has expired too.
    Batched, one short transaction per `chunk` rows, so it never holds many locks.
    """
    cutoff = timezone.now() - older_than - timedelta(seconds=settings.JWT_LEEWAY)
    expired = RefreshToken.objects.filter(expires_at__lt=cutoff).exclude(access_expires_at__gte=cutoff)
    deleted = 0
    while True:
        with transaction.atomic():
            ids = list(expired.order_by().values_list("pk", flat=True)[:chunk])
            if not ids:
                return deleted
            deleted += RefreshToken.objects.filter(pk__in=ids).delete()[0]


# Organizations, users, memberships


def organization_ensure(*, tenant_id: object, slug: str, name: str = "") -> Organization:
    parsed = selectors.parse_tenant_id(tenant_id)
    if parsed is None:
        raise InvalidInput("tenant_id must be a UUID", fields={"tenant_id": ["Must be a UUID."]})
    with transaction.atomic():
        organization = Organization.objects.select_for_update().filter(id=parsed).first()
        if organization is None:
            try:
                with transaction.atomic():
                    organization = Organization.objects.create(id=parsed, slug=slug, name=name)
            except IntegrityError:
                raise Conflict(f"The slug {slug!r} belongs to another tenant", code="slug_taken") from None
        elif organization.slug != slug:
            raise Conflict("This tenant id is already registered with another slug", code="tenant_mismatch")
        for role_name, permissions in DEFAULT_ROLE_PERMISSIONS.items():
            Role.objects.get_or_create(organization=organization, name=role_name, defaults={"permissions": permissions})
    return organization


def user_create(
    *, email: str, password: str | None, full_name: str = "", actor_id: object = None, email_verified: bool = False
) -> User:
    email = _normalized_email(email)
    if password is not None:
        _check_password_strength(password, email=email, full_name=full_name)
    with transaction.atomic():
        if User.objects.filter(email=email).exists():
            raise Conflict("An account with this email already exists", code="email_taken")
        verified_at = timezone.now() if email_verified else None
        user = User.objects.create_user(email, password, full_name=full_name, email_verified_at=verified_at)
        data = {"user_id": str(user.pk), "email": user.email, "full_name": user.full_name}
        _emit("UserCreated", data, tenant_id=None, actor_id=actor_id, aggregate_id=user.pk)
    return user


_USER_EDITABLE_FIELDS = ("full_name", "is_active", "is_staff", "is_superuser")


def user_update(*, user: User, actor_id: object, **changes: object) -> User:
    unknown = set(changes) - set(_USER_EDITABLE_FIELDS)
    if unknown:
        raise InvalidInput(f"Cannot change {', '.join(sorted(unknown))}")
    with transaction.atomic():
        changed = [field for field, value in changes.items() if getattr(user, field) != value]
        for field in changed:
            setattr(user, field, changes[field])
        if not changed:
            return user
        user.save(update_fields=changed)
        if "is_active" in changed and not user.is_active:
            user_sessions_end(user=user)
        data = {
            "user_id": str(user.pk),
            "email": user.email,
            "full_name": user.full_name,
            "is_active": user.is_active,
            "changed": sorted(changed),
        }
        _emit("UserUpdated", data, tenant_id=None, actor_id=actor_id, aggregate_id=user.pk)
    return user


def _role(*, organization: Organization, name: object) -> Role:
    role = selectors.role_get(organization=organization, name=str(name))
    if role is None:
        choices = ", ".join(RoleName.values)
        raise InvalidInput(f"Unknown role {name!r}; choose one of {choices}", fields={"role": [f"One of {choices}."]})
    return role


def _ensure_may_touch_owner(*, actor: Membership | None) -> None:
    # Platform staff (actor None) may; inside an organization only an owner makes or unmakes owners.
    if actor is not None and actor.role.name != RoleName.OWNER:
        raise Forbidden("Only an owner can grant or take away the owner role")


def _ensure_not_last_owner(*, membership: Membership) -> None:
    if membership.role.name != RoleName.OWNER:
        return
    owners = Membership.objects.filter(organization_id=membership.organization_id, role__name=RoleName.OWNER)
    if owners.count() <= 1:
        raise Conflict("An organization must keep at least one owner", code="last_owner")


def membership_create(
    *,
    user: User,
    organization: Organization,
    role_name: str,
    actor_id: object = None,
    project_id: int | None = None,
    project_role: str = "",
) -> Membership:
    """`project_id`/`project_role`: the project an invitation named, published for the projects service."""
    role = _role(organization=organization, name=role_name)
    with transaction.atomic():
        try:
            with transaction.atomic():
                membership = Membership.objects.create(user=user, organization=organization, role=role)
        except IntegrityError:
            raise Conflict("This user is already a member", code="already_member") from None
        _permission_changed(
            user_id=user.pk,
            organization=organization,
            actor_id=actor_id,
            reason="membership_added",
            project_id=project_id,
            project_role=project_role,
        )
    return membership


def membership_role_change(*, membership: Membership, role_name: str, actor: Membership | None) -> Membership:
    role = _role(organization=membership.organization, name=role_name)
    if role.pk == membership.role_id:
        return membership
    with transaction.atomic():
        membership = Membership.objects.select_for_update().select_related("role", "organization").get(pk=membership.pk)
        if RoleName.OWNER in (role.name, membership.role.name):
            _ensure_may_touch_owner(actor=actor)
            _ensure_not_last_owner(membership=membership)
        membership.role = role
        membership.save(update_fields=["role"])
        _permission_changed(
            user_id=membership.user_id,
            organization=membership.organization,
            actor_id=actor.user_id if actor else None,
            reason="role_changed",
        )
    return membership


def membership_remove(*, membership: Membership, actor: Membership | None) -> None:
    with transaction.atomic():
        membership = Membership.objects.select_for_update().select_related("role", "organization").get(pk=membership.pk)
        if membership.role.name == RoleName.OWNER:
            _ensure_may_touch_owner(actor=actor)
            _ensure_not_last_owner(membership=membership)
        organization, user_id = membership.organization, membership.user_id
        membership.delete()
        _sessions_end(RefreshToken.objects.filter(user_id=user_id, organization=organization))
        _permission_changed(
            user_id=user_id,
            organization=organization,
            actor_id=actor.user_id if actor else None,
            reason="membership_removed",
        )


def role_permissions_set(*, role: Role, permissions: object, actor_id: object) -> Role:
    if not isinstance(permissions, list) or not all(isinstance(code, str) for code in permissions):
        raise InvalidInput("permissions must be a list of codes", fields={"permissions": ["A list of strings."]})
    unknown = sorted(set(permissions) - set(PERMISSIONS))
    if unknown:
        raise InvalidInput(f"Unknown permissions: {', '.join(unknown)}", fields={"permissions": unknown})
    if role.name == RoleName.OWNER:
        raise Conflict("The owner role always has every permission", code="owner_role_fixed")
    new_permissions = sorted(set(permissions))
    with transaction.atomic():
        role = Role.objects.select_for_update().select_related("organization").get(pk=role.pk)
        if sorted(role.permissions) == new_permissions:
            return role
        role.permissions = new_permissions
        role.save(update_fields=["permissions", "updated_at"])
        for user_id in role.memberships.values_list("user_id", flat=True):
            _permission_changed(
                user_id=user_id, organization=role.organization, actor_id=actor_id, reason="role_permissions_changed"
            )
    return role


# Email verification


@dataclass(frozen=True)
class OwnerOutcome:
    """What signup did for the owner. Never shown to the signer: both outcomes answer alike."""

    user: User | None  # the new account; None when the address already had one
    invited: bool  # the existing account was invited to own the organization, pending its sign-in


def email_verification_link(*, user: User) -> str:
    return f"{settings.APEX_URL.rstrip('/')}/login/verify/{verification_token_make(user=user)}"


def email_verification_send(*, user: User, organization: Organization | None = None) -> None:
    """Mails a verification link (after commit). The link is never returned to whoever asked."""
    link = email_verification_link(user=user)
    lifetime_hours = int(settings.EMAIL_VERIFICATION_LIFETIME.total_seconds() // 3600)
    where = f" for {organization.name or organization.slug}" if organization is not None else ""
    message = (
        f"An account{where} was created with this address ({user.email}).\n\n"
        f"If it was you, verify the address and set your password: {link}\n\n"
        f"Verifying signs out every session and ends every password set on this account before, "
        f"so if someone else used your address, they lose access. The link works once, for "
        f"{lifetime_hours} hours. If you did not sign up, you can verify anyway to take the account over, "
        f"or ignore this message."
    )
    address = user.email
    transaction.on_commit(lambda: _mail_send(subject="Verify your email address", message=message, to=address))


def email_verification_resend(*, email: object) -> None:
    """Another link for an unverified account; silent for any other address, so it reveals nothing."""
    address = str(email or "").strip().lower()
    user = User.objects.filter(email=address, is_active=True, email_verified_at=None).first() if address else None
    if user is not None and verification_mail_slot_take(user_id=user.pk):
        email_verification_send(user=user)


def email_verify(*, token: object, password: object, full_name: object = None) -> User:
    """The owner of the mailbox proves it and takes the account over.

    Whoever typed this address before (at signup, perhaps an attacker) chose the password and
    holds the sessions; so the verifier sets a new password, and every refresh token and live
    access token of the account ends. Django admin sessions end too: their hash covers the password.
    The token is bound to the unverified state, so it works once.
    """
    user = verification_token_user(token=token)
    if user is None:
        raise InvalidInput(_VERIFICATION_UNUSABLE, code="verification_invalid")
    name = user.full_name if full_name is None else str(full_name)[:200]
    _check_password_strength(password, email=user.email, full_name=name)
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user.pk)
        # Checked again under the lock: of two simultaneous uses of one link, one wins.
        if verification_token_user(token=token) is None:
            raise InvalidInput(_VERIFICATION_UNUSABLE, code="verification_invalid")
        user.set_password(str(password))
        user.email_verified_at = timezone.now()
        user.full_name = name
        user.save(update_fields=["password", "email_verified_at", "full_name"])
        ended = user_sessions_end(user=user)
        data = {
            "user_id": str(user.pk),
            "email": user.email,
            "full_name": user.full_name,
            "is_active": user.is_active,
            "changed": ["email_verified_at", "full_name", "password"],
        }
        _emit("UserUpdated", data, tenant_id=None, actor_id=user.pk, aggregate_id=user.pk)
    logger.info("email verified; earlier sessions ended", extra={"user_id": user.pk, "sessions": ended})
    return user


_VERIFICATION_UNUSABLE = "This verification link is unknown, already used or expired. Ask for a new one."


# Signup's owner


def _owner_invitation_mail_send(*, invitation: Invitation, raw_token: str, user: User) -> None:
    organization = invitation.organization.name or invitation.organization.slug
    link = invitation_link(organization=invitation.organization, raw_token=raw_token)
    message = (
        f"Someone, perhaps you, tried to create the organization {organization} with this address "
        f"({invitation.email}). An account with this address already exists, so nothing about it was "
        f"changed and the password typed at signup was not used.\n\n"
        f"If it was you, open this link and sign in with your existing password to become the owner of "
        f"{organization}: {link}\n(It expires on {invitation.expires_at:%Y-%m-%d %H:%M} UTC.)\n\n"
    )
    if not user.email_verified:
        message += (
            f"Your account was never verified. Verify it and set your own password first: "
            f"{email_verification_link(user=user)}\n\n"
        )
    message += "If it was not you, ignore this message: nobody gets into your account or that organization."
    address = invitation.email
    transaction.on_commit(
        lambda: _mail_send(
            subject="Someone tried to create an organization with your address", message=message, to=address
        )
    )


def tenant_owner_create(
    *,
    tenant_id: object,
    tenant_slug: object,
    email: object,
    password: object,
    full_name: object = "",
    email_verified: bool = False,
    tenant_name: object = "",
) -> OwnerOutcome:
    """The owner of a new tenant (called by tenancy at signup). Idempotent per (tenant, email).

    A new address gets an unverified account that owns the organization, and a verification
    link. An address that already has an account is never signed in here and its password is
    never checked (that made signup a password oracle): the organization is created, its owner
    role is offered to that account by mail, and taken only by signing in as it. Both ways do
    the same work (one password hash, one mail) so that neither the answer nor its timing
    tells the signer which it was. `email_verified` is for trusted seeds (the demo) only.
    """
    email = _normalized_email(email)
    full_name = str(full_name or "")[:200]
    slug = str(tenant_slug or "").strip().lower()
    if not slug or len(slug) > 63 or not all(ch.isalnum() or ch == "-" for ch in slug):
        raise InvalidInput("tenant_slug must be a DNS label", fields={"tenant_slug": ["Letters, digits and hyphens."]})
    _check_password_strength(password, email=email, full_name=full_name)
    with transaction.atomic():
        organization = organization_ensure(tenant_id=tenant_id, slug=slug, name=str(tenant_name or "")[:200])
        user = User.objects.select_for_update().filter(email=email).first()
        if user is None:
            user = user_create(email=email, password=str(password), full_name=full_name, email_verified=email_verified)
            membership_create(user=user, organization=organization, role_name=RoleName.OWNER)
            if not user.email_verified:
                email_verification_send(user=user, organization=organization)
            return OwnerOutcome(user=user, invited=False)
        make_password(str(password))  # the hash a new account costs, so the two answers take as long
        if Membership.objects.filter(user=user, organization=organization, role__name=RoleName.OWNER).exists():
            return OwnerOutcome(user=user, invited=False)  # a retry of the signup that created this account
        already_offered = Invitation.objects.filter(
            organization=organization, email=email, role__name=RoleName.OWNER, accepted_at=None, revoked_at=None
        ).exists()
        if not already_offered:
            invitation, raw_token = _invitation_insert(
                organization=organization,
                email=email,
                role=_role(organization=organization, name=RoleName.OWNER),
                invited_by_id=None,
                link_mailed_only=True,
            )
            _owner_invitation_mail_send(invitation=invitation, raw_token=raw_token, user=user)
    return OwnerOutcome(user=None, invited=True)


# Invitations


def invitation_link(*, organization: Organization, raw_token: str) -> str:
    base = settings.TENANT_URL_TEMPLATE.format(slug=organization.slug).rstrip("/")
    return f"{base}/login/invitation/{raw_token}"


def _invitation_mail_send(*, invitation: Invitation, raw_token: str) -> None:
    link = invitation_link(organization=invitation.organization, raw_token=raw_token)
    organization = invitation.organization.name or invitation.organization.slug
    inviter = invitation.invited_by
    who = f"{inviter.full_name or inviter.email} invited you" if inviter is not None else "You have been invited"
    message = (
        f"{who} to join {organization} as {invitation.role.name}.\n\n"
        f"Accept the invitation: {link}\n\nThe link expires on {invitation.expires_at:%Y-%m-%d %H:%M} UTC. "
        f"If you did not expect this invitation, ignore this message."
    )
    address = invitation.email
    transaction.on_commit(lambda: _mail_send(subject=f"You are invited to {organization}", message=message, to=address))


def _invitation_insert(
    *,
    organization: Organization,
    email: str,
    role: Role,
    invited_by_id: object,
    link_mailed_only: bool,
    project_id: int | None = None,
    project_role: str = "",
) -> tuple[Invitation, str]:
    raw_token = secrets.token_urlsafe(32)
    now = timezone.now()
    # Only the newest link for a person works: re-inviting replaces the earlier offer.
    Invitation.objects.filter(organization=organization, email=email, accepted_at=None, revoked_at=None).update(
        revoked_at=now
    )
    invitation = Invitation.objects.create(
        organization=organization,
        email=email,
        role=role,
        token_hash=selectors.invitation_token_hash(raw_token),
        invited_by_id=invited_by_id,
        sent_at=now,
        expires_at=now + settings.INVITATION_LIFETIME,
        link_mailed_only=link_mailed_only,
        project_id=project_id,
        project_role=project_role if project_id is not None else "",
    )
    return invitation, raw_token


@dataclass(frozen=True)
class InvitationTerms:
    """What an invitation offers, checked: the address, the role, and the project to land on."""

    email: str
    role: Role
    project_id: int | None
    project_role: str


_PROJECT_ID_MAX = 2**63 - 1


def _project_choice(project_id: object, project_role: object) -> tuple[int | None, str]:
    if project_id in (None, ""):
        return None, ""
    if isinstance(project_id, bool) or not (
        isinstance(project_id, int) or (isinstance(project_id, str) and project_id.isascii() and project_id.isdigit())
    ):
        raise InvalidInput("project_id must be a project's id", fields={"project_id": ["A project's id."]})
    number = int(project_id)
    if not 1 <= number <= _PROJECT_ID_MAX:
        raise InvalidInput("project_id must be a project's id", fields={"project_id": ["A project's id."]})
    role = str(project_role or ProjectRole.MEMBER)
    if role not in ProjectRole.values:
        choices = ", ".join(ProjectRole.values)
        raise InvalidInput(
            f"Unknown project role {role!r}; choose one of {choices}", fields={"project_role": [f"One of {choices}."]}
        )
    return number, role


def invitation_terms_check(
    *,
    organization: Organization,
    email: object,
    role_name: object,
    actor: Membership | None,
    project_id: object = None,
    project_role: object = "",
) -> InvitationTerms:
    """The refusals an invitation can meet, before anything is written (the admin's form shows them per field).

    The project is the projects service's: identity only publishes its id with the acceptance,
    and that service adds the invitee to it if it is one of the organization's projects.
    """
    address = _normalized_email(email)
    role = _role(organization=organization, name=role_name)
    if role.name == RoleName.OWNER:
        _ensure_may_touch_owner(actor=actor)
    if Membership.objects.filter(organization=organization, user__email=address).exists():
        raise Conflict(
            "This person is already a member", code="already_member", fields={"email": ["Already a member."]}
        )
    number, project_role_name = _project_choice(project_id, project_role)
    return InvitationTerms(email=address, role=role, project_id=number, project_role=project_role_name)


def invitation_create(
    *,
    organization: Organization,
    email: object,
    role_name: object,
    actor: Membership | None,
    project_id: object = None,
    project_role: object = "",
) -> tuple[Invitation, str]:
    terms = invitation_terms_check(
        organization=organization,
        email=email,
        role_name=role_name,
        actor=actor,
        project_id=project_id,
        project_role=project_role,
    )
    with transaction.atomic():
        invitation, raw_token = _invitation_insert(
            organization=organization,
            email=terms.email,
            role=terms.role,
            invited_by_id=actor.user_id if actor else None,
            # With the link also in the inviter's answer, accepting it proves nothing about the mailbox.
            link_mailed_only=not settings.INVITATION_LINK_IN_RESPONSE,
            project_id=terms.project_id,
            project_role=terms.project_role,
        )
        _invitation_mail_send(invitation=invitation, raw_token=raw_token)
    return invitation, raw_token


def invitation_resend(*, invitation: Invitation, actor: Membership | None) -> tuple[Invitation, str]:
    """Mails a new link for an open invitation (an expired one too: it gets a new lifetime).

    The new token replaces the old one, so the link mailed before stops working. At most one
    mail per invitation every INVITATION_RESEND_INTERVAL, so the button cannot flood a mailbox.
    """
    with transaction.atomic():
        invitation = (
            Invitation.objects.select_for_update(of=("self",))
            .select_related("organization", "role", "invited_by")
            .filter(pk=invitation.pk)
            .first()
        )
        if invitation is None:
            raise NotFound("No such invitation in this organization")
        if invitation.accepted_at is not None or invitation.revoked_at is not None:
            state = "accepted" if invitation.accepted_at is not None else "revoked"
            raise Conflict(f"This invitation was already {state}; invite the person again", code="invitation_closed")
        if invitation.role.name == RoleName.OWNER:
            _ensure_may_touch_owner(actor=actor)
        if Membership.objects.filter(organization=invitation.organization, user__email=invitation.email).exists():
            raise Conflict("This person is already a member", code="already_member")
        now = timezone.now()
        wait = math.ceil((invitation.sent_at + settings.INVITATION_RESEND_INTERVAL - now).total_seconds())
        if wait > 0:
            raise RateLimited(
                f"This invitation was mailed moments ago. You can send it again in {wait} seconds.",
                code="resend_throttled",
                retry_after=wait,
            )
        raw_token = secrets.token_urlsafe(32)
        invitation.token_hash = selectors.invitation_token_hash(raw_token)
        invitation.sent_at = now
        invitation.expires_at = now + settings.INVITATION_LIFETIME
        invitation.link_mailed_only = not settings.INVITATION_LINK_IN_RESPONSE
        invitation.save(update_fields=["token_hash", "sent_at", "expires_at", "link_mailed_only"])
        _invitation_mail_send(invitation=invitation, raw_token=raw_token)
    return invitation, raw_token


def invitation_revoke(*, invitation: Invitation) -> None:
    Invitation.objects.filter(pk=invitation.pk, accepted_at=None, revoked_at=None).update(revoked_at=timezone.now())


_INVITATION_UNUSABLE = "This invitation link is unknown, already used, revoked or expired"


def _existing_account_sign_in(*, user: User, password: object, ip: str) -> None:
    """Accepting as an existing account is signing in as it: its password, under the login limit."""
    if not isinstance(password, str) or not password:
        raise InvalidCredentials(
            "This address has an account: sign in with its password to accept",
            code="sign_in_required",
            fields={"password": ["Your account's password is required."]},
        )
    throttle = login_attempt_begin(email=user.email, ip=ip)
    if throttle.retry_after:
        raise LoginThrottled(throttle.retry_after)
    if not user.check_password(password):
        raise InvalidCredentials(BAD_CREDENTIALS_MESSAGE)
    login_attempt_succeeded(email=user.email, ip=ip)


def invitation_accept(
    *, raw_token: object, password: object = None, full_name: object = "", ip: str = "unknown"
) -> Membership:
    """Joins the invited organization.

    A new person sets a password (their account counts as verified when the link went only to
    the mailbox). An existing account must sign in with its own password (knowing the link is not
    enough), and must have verified its address: an account someone else may have created with
    this address joins nothing until the mailbox's owner has verified it (and so taken it over).
    """
    if not isinstance(raw_token, str) or not raw_token:
        raise InvalidInput("token is required", fields={"token": ["This field is required."]})
    invitation = selectors.invitation_get_pending(raw_token=raw_token)
    if invitation is None:
        raise InvalidInput(_INVITATION_UNUSABLE, code="invitation_invalid")
    existing = User.objects.filter(email=invitation.email).first()
    if existing is not None:
        if not existing.is_active:
            raise Forbidden("This account is disabled", code="account_disabled")
        if not existing.email_verified:
            with transaction.atomic():
                if verification_mail_slot_take(user_id=existing.pk):
                    email_verification_send(user=existing, organization=invitation.organization)
            raise Forbidden(
                f"The account for {existing.email} has not verified its address yet. We sent a link there: "
                f"verify the address and set your password, then come back to accept.",
                code="email_unverified",
            )
        _existing_account_sign_in(user=existing, password=password, ip=ip)
    with transaction.atomic():
        invitation = (
            Invitation.objects.select_for_update()
            .select_related("organization", "role")
            .filter(pk=invitation.pk)
            .first()
        )
        if invitation is None or not invitation.is_pending:
            raise InvalidInput(_INVITATION_UNUSABLE, code="invitation_invalid")
        user = User.objects.filter(email=invitation.email).first()
        if user is None:
            if not password:
                raise InvalidInput(
                    "Choose a password to create your account", fields={"password": ["This field is required."]}
                )
            user = user_create(
                email=invitation.email,
                password=str(password),
                full_name=str(full_name or "")[:200],
                actor_id=invitation.invited_by_id,
                email_verified=invitation.link_mailed_only,
            )
            if not user.email_verified:
                email_verification_send(user=user, organization=invitation.organization)
        elif existing is None or user.pk != existing.pk:
            # The account appeared between the checks above and this lock: start over, signed in.
            raise Conflict("This address now has an account; sign in to accept", code="sign_in_required")
        membership = Membership.objects.filter(user=user, organization=invitation.organization).first()
        if membership is None:
            membership = membership_create(
                user=user,
                organization=invitation.organization,
                role_name=invitation.role.name,
                actor_id=invitation.invited_by_id,
                project_id=invitation.project_id,
                project_role=invitation.project_role,
            )
        elif invitation.project_id is not None:
            # Already in the organization (added meanwhile): the project the invitation named still applies.
            _permission_changed(
                user_id=user.pk,
                organization=invitation.organization,
                actor_id=invitation.invited_by_id,
                reason="invitation_accepted",
                project_id=invitation.project_id,
                project_role=invitation.project_role,
            )
        invitation.accepted_at = timezone.now()
        invitation.save(update_fields=["accepted_at"])
    return membership


# Sign-in and tokens


def login_authenticate(*, email: object, password: object, tenant_id: object, ip: str) -> Membership:
    """The membership a sign-in opens, or InvalidCredentials with one message for every reason.

    The attempt takes its throttle slot before the password is checked (atomically), so
    concurrent guesses cannot all slip under the limit; only a success gives the slot back.
    """
    email = str(email or "").strip().lower()
    password = str(password or "")
    throttle = login_attempt_begin(email=email, ip=ip)
    if throttle.retry_after:
        raise LoginThrottled(throttle.retry_after)
    user = User.objects.filter(email=email).first() if email else None
    if user is None:
        # Hash anyway so an unknown email takes as long to refuse as a wrong password.
        User().set_password(password)
        membership = None
    elif not user.check_password(password) or not user.is_active:
        membership = None
    else:
        membership = selectors.membership_get(user_id=user.pk, tenant_id=tenant_id)
        if membership is not None:
            membership.user = user  # the password checked here is the one token_pair_issue holds us to
    if membership is None:
        raise InvalidCredentials(BAD_CREDENTIALS_MESSAGE)
    login_attempt_succeeded(email=email, ip=ip)
    User.objects.filter(pk=membership.user_id).update(last_login=timezone.now())
    return membership


def _expiry(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


def token_pair_issue(*, membership: Membership, family: uuid.UUID | None = None) -> TokenPair:
    """A pair for this membership. Refused if the account's password changed (or it was disabled)
    since `membership.user` was read: the sign-in that loaded it was for a password that is gone."""
    with transaction.atomic():
        _users_lock([membership.user_id])
        current = User.objects.filter(pk=membership.user_id).values_list("password", "is_active").first()
        if current is None or current != (membership.user.password, True):
            raise InvalidCredentials(BAD_CREDENTIALS_MESSAGE)
        return _token_pair_create(membership=membership, family=family)


def _token_pair_create(*, membership: Membership, family: uuid.UUID | None) -> TokenPair:
    family = family or uuid.uuid4()
    access_rights = selectors.access_of_membership(membership)
    access = PlatformAccessToken.for_user(membership.user)
    access["tenantId"] = str(membership.organization_id)
    access["roles"] = list(access_rights.roles)
    access["permissions"] = list(access_rights.permissions)
    access["sid"] = str(family)  # the session (refresh family), so /logout can end it from the access cookie
    refresh = PlatformRefreshToken.for_user(membership.user)
    refresh["tenantId"] = str(membership.organization_id)
    refresh["fam"] = str(family)
    RefreshToken.objects.create(
        jti=refresh["jti"],
        family=family,
        user_id=membership.user_id,
        organization_id=membership.organization_id,
        expires_at=_expiry(refresh["exp"]),
        access_jti=access["jti"],
        access_expires_at=_expiry(access["exp"]),
    )
    return TokenPair(
        access=str(access),
        refresh=str(refresh),
        expires_in=int(PlatformAccessToken.lifetime.total_seconds()),
        refresh_expires_in=int(PlatformRefreshToken.lifetime.total_seconds()),
    )


def _refresh_claims(raw_token: object, *, tenant_id: object) -> PlatformRefreshToken:
    if not isinstance(raw_token, str) or not raw_token:
        raise InvalidInput("refresh is required", fields={"refresh": ["This field is required."]})
    try:
        token = PlatformRefreshToken(raw_token)
    except TokenError as exc:
        raise InvalidRefreshToken(f"Refresh token refused: {exc}") from None
    if token.get("tenantId") != str(selectors.parse_tenant_id(tenant_id)):
        raise InvalidRefreshToken("Refresh token refused: it belongs to another organization")
    return token


def _family_revoke(*, family: uuid.UUID | str) -> int:
    return _sessions_end(RefreshToken.objects.filter(family=family))


def refresh_token_rotate(*, raw_token: object, tenant_id: object) -> TokenPair:
    """A new pair for a refresh token, which is used up. Presenting a used one again revokes its family."""
    token = _refresh_claims(raw_token, tenant_id=tenant_id)
    refusal: ServiceError
    owner_id = RefreshToken.objects.filter(jti=token["jti"]).values_list("user_id", flat=True).first()
    if owner_id is None:
        raise InvalidRefreshToken("Refresh token refused: unknown token")
    with transaction.atomic():
        _users_lock([owner_id])  # before the token's row: the order every session change takes
        record = RefreshToken.objects.select_for_update().filter(jti=token["jti"]).first()
        if record is None:
            raise InvalidRefreshToken("Refresh token refused: unknown token")
        if record.used_at is not None:
            # Someone holds a copy: the thief or the owner, we cannot tell, so end the session for both.
            _family_revoke(family=record.family)
            logger.warning("refresh token reuse; family revoked", extra={"family": str(record.family)})
            refusal = InvalidRefreshToken("Refresh token was already used; the session is revoked", code="token_reused")
        elif record.revoked_at is not None:
            refusal = InvalidRefreshToken("Refresh token refused: the session is revoked", code="token_revoked")
        else:
            membership = selectors.membership_get(user_id=record.user_id, tenant_id=record.organization_id)
            if membership is None:
                _family_revoke(family=record.family)
                refusal = InvalidRefreshToken("Refresh token refused: no longer a member", code="token_revoked")
            else:
                record.used_at = timezone.now()
                record.save(update_fields=["used_at"])
                return token_pair_issue(membership=membership, family=record.family)
    # Raised after the block so the revocation above commits.
    raise refusal


def refresh_token_revoke(*, raw_token: object, tenant_id: object) -> None:
    """Logout: ends the whole session the token belongs to, access tokens included. Revoking twice is fine."""
    token = _refresh_claims(raw_token, tenant_id=tenant_id)
    record = RefreshToken.objects.filter(jti=token["jti"]).first()
    if record is None:
        raise InvalidRefreshToken("Refresh token refused: unknown token")
    _family_revoke(family=record.family)


def logout(*, access: PresentedAccess | None, raw_refresh: object = None, tenant_id: object = None) -> None:
    """Ends a session, from the API or a browser: the refresh token's family when one is given,
    and the presented access token with the session it names (it may be another one)."""
    if raw_refresh is not None:
        refresh_token_revoke(raw_token=raw_refresh, tenant_id=tenant_id)
    if access is not None:
        access_token_revoke(jti=access.jti, expires_at=access.expires_at)
        if access.session_id:
            session_revoke(family=access.session_id, user_id=access.user_id)


def session_revoke(*, family: object, user_id: object) -> None:
    """Logout from a browser, which holds only the access cookie on most paths; `sid` names the family."""
    try:
        family_id = uuid.UUID(str(family))
    except ValueError:
        return
    _sessions_end(RefreshToken.objects.filter(family=family_id, user_id=user_id))


def password_change(*, membership: Membership, current_password: object, new_password: object, ip: str) -> TokenPair:
    """A signed-in person's new password. The current one is checked under the login limit; every
    session of the account ends (other devices, and any thief's); this one gets a fresh pair."""
    user = membership.user
    _check_password_strength(new_password, email=user.email, full_name=user.full_name, field="new_password")
    throttle = login_attempt_begin(email=user.email, ip=ip)
    if throttle.retry_after:
        raise LoginThrottled(throttle.retry_after)
    if not isinstance(current_password, str) or not user.check_password(current_password):
        raise InvalidCredentials("The current password is incorrect", code="invalid_credentials")
    login_attempt_succeeded(email=user.email, ip=ip)
    if current_password == new_password:
        raise InvalidInput(
            "Choose a password different from the current one",
            fields={"new_password": ["It is the same as the current password."]},
        )
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user.pk)
        user.set_password(str(new_password))
        user.save(update_fields=["password"])
        user_sessions_end(user=user)
        membership.user = user
        return token_pair_issue(membership=membership)
