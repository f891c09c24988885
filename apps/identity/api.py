"""The identity HTTP API (DRF). Thin: parse, call a service or selector, shape the answer."""

import hmac
from typing import Any

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.common.auth import JWTAuthentication, csrf_failure, token_from_request
from apps.common.drf import AsciiIntegerField, AsciiUUIDField
from apps.common.exceptions import InvalidInput, NotFound
from apps.common.http import client_ip
from apps.identity import keyring, selectors, services
from apps.identity.cookies import ACCESS_COOKIE, REFRESH_COOKIE, clear_auth_cookies, request_tenant, set_auth_cookies
from apps.identity.models import Membership
from apps.identity.roles import PERMISSIONS, ProjectRole, RoleName
from apps.identity.tokens import access_token_presented


class IsTokenAuthenticated(BasePermission):
    def has_permission(self, request: Request, view: APIView) -> bool:
        return request.user is not None


class MemberView(APIView):
    """Views for a signed-in member. Rights are read fresh from the database, not from the token."""

    authentication_classes = [JWTAuthentication]
    permission_classes = [IsTokenAuthenticated]
    required_permission: str | None = None

    def actor(self, request: Request, permission: str | None = None) -> Membership:
        membership = selectors.membership_get(user_id=request.user.id, tenant_id=request.auth.tenant_id)
        if membership is None:
            raise exceptions.PermissionDenied("You are no longer a member of this organization", code="not_a_member")
        needed = permission or self.required_permission
        if needed and not selectors.access_of_membership(membership).allows(needed):
            raise exceptions.PermissionDenied(f"This needs the {needed} permission", code="forbidden")
        return membership


class PublicView(APIView):
    authentication_classes: list = []
    permission_classes: list = []


# Tokens


class TokenRequest(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(max_length=1024, trim_whitespace=False)


class TokenObtainView(PublicView):
    openapi_errors = {"post": (401, 429)}

    @extend_schema(request=TokenRequest, responses=OpenApiTypes.OBJECT)
    def post(self, request: Request) -> Response:
        body = TokenRequest(data=request.data)
        body.is_valid(raise_exception=True)
        tenant_id = request_tenant(request)
        membership = services.login_authenticate(
            email=body.validated_data["email"],
            password=body.validated_data["password"],
            tenant_id=tenant_id,
            ip=client_ip(request),
        )
        return Response(services.token_pair_issue(membership=membership).as_dict())


class RefreshRequest(serializers.Serializer):
    refresh = serializers.CharField(
        required=False, help_text="Omit to use the refresh_token cookie (needs X-CSRFToken)."
    )


def _refresh_from(request: Request) -> tuple[object, bool]:
    """(refresh token, came_from_cookie). A cookie-borne refresh is a browser's, so it must pass CSRF."""
    if not isinstance(request.data, dict):
        raise InvalidInput("The body must be a JSON object")
    if "refresh" in request.data:
        return request.data["refresh"], False
    cookie = request.COOKIES.get(REFRESH_COOKIE)
    if not cookie:
        raise InvalidInput("refresh is required", fields={"refresh": ["This field is required."]})
    reason = csrf_failure(request._request)
    if reason:
        raise exceptions.PermissionDenied(f"CSRF check failed: {reason}", code="csrf_failed")
    return cookie, True


class TokenRefreshView(PublicView):
    openapi_errors = {"post": (401, 403)}

    @extend_schema(request=RefreshRequest, responses=OpenApiTypes.OBJECT)
    def post(self, request: Request) -> Response:
        raw_token, from_cookie = _refresh_from(request)
        pair = services.refresh_token_rotate(raw_token=raw_token, tenant_id=request_tenant(request))
        response = Response(pair.as_dict())
        if from_cookie:
            set_auth_cookies(response, pair)
        return response


class LogoutView(PublicView):
    openapi_errors = {"post": (401, 403)}

    @extend_schema(request=RefreshRequest, responses={204: None})
    def post(self, request: Request) -> Response:
        """Ends the session: its refresh tokens, and its access tokens (`token_revoked` from now on)."""
        raw_token, from_cookie = _refresh_from(request)
        presented_token, _ = token_from_request(request)
        services.logout(
            raw_refresh=raw_token,
            access=access_token_presented(presented_token) if presented_token else None,
            tenant_id=request_tenant(request),
        )
        response = Response(status=status.HTTP_204_NO_CONTENT)
        if from_cookie:
            clear_auth_cookies(response)
        return response


class MeView(MemberView):
    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request) -> Response:
        membership = self.actor(request)
        access = selectors.access_of_membership(membership)
        user = membership.user
        others = user.memberships.select_related("organization", "role").order_by("organization__slug")
        return Response(
            {
                "id": str(user.pk),
                "email": user.email,
                "email_verified": user.email_verified,
                "full_name": user.full_name,
                "tenant_id": str(membership.organization_id),
                "roles": list(access.roles),
                "permissions": list(access.permissions),
                "memberships": [
                    {"tenant_id": str(m.organization_id), "tenant_slug": m.organization.slug, "role": m.role.name}
                    for m in others
                ],
            }
        )


class PasswordChangeRequest(serializers.Serializer):
    current_password = serializers.CharField(max_length=1024, trim_whitespace=False)
    new_password = serializers.CharField(max_length=1024, trim_whitespace=False)


class PasswordChangeView(MemberView):
    openapi_errors = {"post": (429,)}

    @extend_schema(request=PasswordChangeRequest, responses=OpenApiTypes.OBJECT)
    def post(self, request: Request) -> Response:
        """A new password (Django's validators). Every session of the account ends; the answer is a fresh pair."""
        membership = self.actor(request)
        body = PasswordChangeRequest(data=request.data)
        body.is_valid(raise_exception=True)
        pair = services.password_change(
            membership=membership,
            current_password=body.validated_data["current_password"],
            new_password=body.validated_data["new_password"],
            ip=client_ip(request),
        )
        response = Response(pair.as_dict())
        if request.COOKIES.get(ACCESS_COOKIE):
            set_auth_cookies(response, pair)
        return response


class EmailVerifyRequest(serializers.Serializer):
    token = serializers.CharField(max_length=512)
    password = serializers.CharField(max_length=1024, trim_whitespace=False)
    full_name = serializers.CharField(max_length=200, required=False, allow_blank=True)


class EmailVerifyView(PublicView):
    @extend_schema(request=EmailVerifyRequest, responses=OpenApiTypes.OBJECT)
    def post(self, request: Request) -> Response:
        """Proves the address with the mailed link's token and sets the account's password; every
        earlier session and password of the account ends."""
        body = EmailVerifyRequest(data=request.data)
        body.is_valid(raise_exception=True)
        user = services.email_verify(
            token=body.validated_data["token"],
            password=body.validated_data["password"],
            full_name=body.validated_data.get("full_name"),
        )
        return Response({"email": user.email, "email_verified": True})


class EmailVerifyResendRequest(serializers.Serializer):
    email = serializers.EmailField(max_length=254)


class EmailVerifyResendView(PublicView):
    @extend_schema(request=EmailVerifyResendRequest, responses={202: OpenApiTypes.OBJECT})
    def post(self, request: Request) -> Response:
        """Mails a new link if the address has an unverified account; the answer is the same for any address."""
        body = EmailVerifyResendRequest(data=request.data)
        body.is_valid(raise_exception=True)
        services.email_verification_resend(email=body.validated_data["email"])
        return Response(
            {"detail": "If this address has an account waiting for verification, a new link is on its way."},
            status=status.HTTP_202_ACCEPTED,
        )


class JwksView(PublicView):
    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request) -> Response:
        keyring.signing_key_ensure()
        response = Response(selectors.jwks_document())
        response["Cache-Control"] = "public, max-age=60"
        return response


# Members and invitations


def member_json(membership: Membership) -> dict:
    return {
        "id": str(membership.user_id),
        "email": membership.user.email,
        "full_name": membership.user.full_name,
        "role": membership.role.name,
        "joined_at": membership.created_at,
    }


def invitation_json(invitation: Any, *, raw_token: str | None = None) -> dict:
    inviter = invitation.invited_by
    body = {
        "id": invitation.pk,
        "email": invitation.email,
        "role": invitation.role.name,
        "expires_at": invitation.expires_at,
        "created_at": invitation.created_at,
        "sent_at": invitation.sent_at,
        "invited_by": (
            None if inviter is None else {"id": str(inviter.pk), "full_name": inviter.full_name, "email": inviter.email}
        ),
        "project_id": invitation.project_id,
        "project_role": invitation.project_role or None,
    }
    if raw_token is not None and settings.INVITATION_LINK_IN_RESPONSE:
        body["accept_url"] = services.invitation_link(organization=invitation.organization, raw_token=raw_token)
    return body


class InviteRequest(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    role = serializers.ChoiceField(choices=RoleName.choices, default=RoleName.MEMBER)
    project_id = AsciiIntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        help_text="A project (GET /api/projects) the invitee joins on accepting, and lands on.",
    )
    project_role = serializers.ChoiceField(
        choices=ProjectRole.choices,
        required=False,
        allow_blank=True,
        help_text="Their role in that project (default member).",
    )


class RoleChangeRequest(serializers.Serializer):
    role = serializers.ChoiceField(choices=RoleName.choices)


class UserListView(MemberView):
    required_permission = "manage_members"
    openapi_errors = {"post": (409,)}

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request) -> Response:
        actor = self.actor(request)
        members = selectors.membership_list(organization=actor.organization)
        return Response({"items": [member_json(m) for m in members]})

    @extend_schema(request=InviteRequest, responses={201: OpenApiTypes.OBJECT})
    def post(self, request: Request) -> Response:
        """Invite someone by email; they become a member when they accept."""
        actor = self.actor(request)
        body = InviteRequest(data=request.data)
        body.is_valid(raise_exception=True)
        invitation, raw_token = services.invitation_create(
            organization=actor.organization,
            email=body.validated_data["email"],
            role_name=body.validated_data["role"],
            actor=actor,
            project_id=body.validated_data.get("project_id"),
            project_role=body.validated_data.get("project_role", ""),
        )
        return Response(invitation_json(invitation, raw_token=raw_token), status=status.HTTP_201_CREATED)


class UserDetailView(MemberView):
    required_permission = "manage_members"
    openapi_errors = {"patch": (409,), "delete": (409,)}

    def _target(self, actor: Membership, user_id: str) -> Membership:
        # ASCII digits only: "²".isdigit() is True, and the database would refuse it with a 500.
        is_id = user_id.isascii() and user_id.isdigit()
        target = selectors.membership_get(user_id=user_id, tenant_id=actor.organization_id) if is_id else None
        if target is None:
            raise NotFound("No such member in this organization")
        return target

    @extend_schema(request=RoleChangeRequest, responses=OpenApiTypes.OBJECT)
    def patch(self, request: Request, user_id: str) -> Response:
        actor = self.actor(request)
        target = self._target(actor, user_id)
        body = RoleChangeRequest(data=request.data)
        body.is_valid(raise_exception=True)
        membership = services.membership_role_change(
            membership=target, role_name=body.validated_data["role"], actor=actor
        )
        return Response(member_json(membership))

    @extend_schema(responses={204: None})
    def delete(self, request: Request, user_id: str) -> Response:
        actor = self.actor(request)
        services.membership_remove(membership=self._target(actor, user_id), actor=actor)
        return Response(status=status.HTTP_204_NO_CONTENT)


class InvitationListView(MemberView):
    required_permission = "manage_members"

    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request) -> Response:
        actor = self.actor(request)
        pending = selectors.invitation_list_pending(organization=actor.organization)
        return Response({"items": [invitation_json(invitation) for invitation in pending]})


def _invitation_of(actor: Membership, invitation_id: int) -> Any:
    """One of the actor's organization's invitations; another organization's id is simply not found."""
    invitation = selectors.invitation_get(organization=actor.organization, invitation_id=invitation_id)
    if invitation is None:
        raise NotFound("No such invitation in this organization")
    return invitation


class InvitationDetailView(MemberView):
    required_permission = "manage_members"

    @extend_schema(responses={204: None})
    def delete(self, request: Request, invitation_id: int) -> Response:
        """Revokes the invitation: its link stops working. Revoking twice, or an accepted one, changes nothing."""
        actor = self.actor(request)
        services.invitation_revoke(invitation=_invitation_of(actor, invitation_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class InvitationResendView(MemberView):
    required_permission = "manage_members"
    openapi_errors = {"post": (409, 429)}

    @extend_schema(request=None, responses=OpenApiTypes.OBJECT)
    def post(self, request: Request, invitation_id: int) -> Response:
        """Mails a new link (a new token: the earlier link stops working) with a new lifetime. 409
        `invitation_closed` once accepted or revoked; 429 `resend_throttled` within
        INVITATION_RESEND_INTERVAL_SECONDS of the last mail."""
        actor = self.actor(request)
        invitation, raw_token = services.invitation_resend(invitation=_invitation_of(actor, invitation_id), actor=actor)
        return Response(invitation_json(invitation, raw_token=raw_token))


class InvitationAcceptRequest(serializers.Serializer):
    token = serializers.CharField(max_length=200)
    password = serializers.CharField(
        max_length=1024,
        trim_whitespace=False,
        required=False,
        help_text="A new person: the password to create the account with. An existing account: its password.",
    )
    full_name = serializers.CharField(max_length=200, required=False, allow_blank=True)


class InvitationAcceptView(PublicView):
    openapi_errors = {"post": (401, 403, 409, 429)}

    @extend_schema(request=InvitationAcceptRequest, responses={201: OpenApiTypes.OBJECT})
    def post(self, request: Request) -> Response:
        """Joins the organization. An existing account signs in (its password); one that never
        verified its address must verify first (403 `email_unverified`, a link is mailed)."""
        body = InvitationAcceptRequest(data=request.data)
        body.is_valid(raise_exception=True)
        membership = services.invitation_accept(
            raw_token=body.validated_data["token"],
            password=body.validated_data.get("password"),
            full_name=body.validated_data.get("full_name", ""),
            ip=client_ip(request),
        )
        return Response(
            {
                "user_id": str(membership.user_id),
                "tenant_id": str(membership.organization_id),
                "role": membership.role.name,
            },
            status=status.HTTP_201_CREATED,
        )


# Roles


def role_json(role: Any) -> dict:
    return {"name": role.name, "permissions": sorted(role.permissions)}


class RolePermissionsRequest(serializers.Serializer):
    permissions = serializers.ListField(child=serializers.ChoiceField(choices=list(PERMISSIONS)), allow_empty=True)


class RoleListView(MemberView):
    @extend_schema(responses=OpenApiTypes.OBJECT)
    def get(self, request: Request) -> Response:
        actor = self.actor(request)
        roles = selectors.role_list(organization=actor.organization)
        return Response({"items": [role_json(role) for role in roles], "available_permissions": PERMISSIONS})


class RoleDetailView(MemberView):
    required_permission = "manage_roles"
    openapi_errors = {"patch": (409,)}

    @extend_schema(request=RolePermissionsRequest, responses=OpenApiTypes.OBJECT)
    def patch(self, request: Request, name: str) -> Response:
        actor = self.actor(request)
        role = selectors.role_get(organization=actor.organization, name=name) if name in RoleName.values else None
        if role is None:
            raise NotFound(f"No role named {name!r}")
        body = RolePermissionsRequest(data=request.data)
        body.is_valid(raise_exception=True)
        role = services.role_permissions_set(
            role=role, permissions=body.validated_data["permissions"], actor_id=actor.user_id
        )
        return Response(role_json(role))


# Internal (service to service; the gateway never routes /internal/)


class HasInternalToken(BasePermission):
    message = "A valid X-Internal-Token header is required"

    def has_permission(self, request: Request, view: APIView) -> bool:
        presented = request.headers.get("X-Internal-Token", "")
        return hmac.compare_digest(presented.encode(), settings.INTERNAL_API_TOKEN.encode())


class TenantOwnerRequest(serializers.Serializer):
    tenant_id = AsciiUUIDField()
    tenant_slug = serializers.SlugField(max_length=63)
    # The organization's name as its owner typed it, for mails and pages ("" leaves it unnamed).
    tenant_name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(max_length=1024, trim_whitespace=False)
    full_name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    # Only tenancy's demo seed says True; nobody outside reaches /internal/.
    email_verified = serializers.BooleanField(required=False, default=False)


class TenantOwnerView(PublicView):
    permission_classes = [HasInternalToken]
    schema = None  # internal: not in the public OpenAPI

    def permission_denied(self, request: Request, message: str | None = None, code: str | None = None) -> None:
        raise exceptions.PermissionDenied(HasInternalToken.message, code="invalid_internal_token")

    def post(self, request: Request) -> Response:
        body = TenantOwnerRequest(data=request.data)
        body.is_valid(raise_exception=True)
        outcome = services.tenant_owner_create(**body.validated_data)
        # Tenancy keeps this to itself; its own answer to the signer is the same either way.
        user_id = str(outcome.user.pk) if outcome.user is not None else None
        return Response(
            {"user_id": user_id, "owner": "invited" if outcome.invited else "member"}, status=status.HTTP_201_CREATED
        )
