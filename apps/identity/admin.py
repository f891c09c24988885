"""Django admin for identity, scoped by tenant.

On a tenant host (the gateway sets X-Tenant-ID) an organization's owners and admins sign in
and see only their organization's users, memberships, roles and invitations; platform staff
(active superusers with is_staff) see and manage everything. The scope is worked out again
on every request, so a session cookie carried to another tenant's host opens nothing there.
"""

import uuid
from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse

from apps.common.auth import tenant_id_from_request
from apps.common.exceptions import ServiceError
from apps.common.http import client_ip
from apps.identity import selectors, services
from apps.identity.models import Invitation, Membership, Organization, Role, SigningKey, User
from apps.identity.roles import ADMIN_ROLES, PERMISSIONS, RoleName
from apps.identity.throttling import login_attempt_begin, login_attempt_succeeded


@dataclass(frozen=True)
class AdminScope:
    platform_staff: bool = False
    membership: Membership | None = None

    @property
    def organization_id(self) -> uuid.UUID | None:
        return self.membership.organization_id if self.membership else None

    @property
    def allowed(self) -> bool:
        return self.platform_staff or self.membership is not None

    def may(self, permission: str) -> bool:
        if self.platform_staff:
            return True
        return self.membership is not None and selectors.access_of_membership(self.membership).allows(permission)


def admin_scope(request: HttpRequest) -> AdminScope:
    cached = getattr(request, "_identity_admin_scope", None)
    if cached is not None:
        return cached
    user = request.user
    scope = AdminScope()
    if user.is_authenticated and user.is_active:
        if user.is_platform_staff:
            scope = AdminScope(platform_staff=True)
        else:
            membership = selectors.membership_get(user_id=user.pk, tenant_id=tenant_id_from_request(request))
            if membership is not None and membership.role.name in ADMIN_ROLES:
                scope = AdminScope(membership=membership)
    request._identity_admin_scope = scope
    return scope


class OrganizationAdminLoginForm(AdminAuthenticationForm):
    """Lets in platform staff, and an organization's owners and admins on that organization's host."""

    def clean(self) -> dict[str, Any]:
        email = str(self.data.get("username", "")).strip().lower()
        ip = client_ip(self.request) if self.request else "unknown"
        throttle = login_attempt_begin(email=email, ip=ip)
        if throttle.retry_after:
            raise ValidationError(f"Too many failed sign-in attempts. Try again in {throttle.retry_after} seconds.")
        cleaned = super().clean()  # a refusal keeps the slot taken above: it counts as a failure
        login_attempt_succeeded(email=email, ip=ip)
        return cleaned

    def confirm_login_allowed(self, user: User) -> None:
        AuthenticationForm.confirm_login_allowed(self, user)
        if user.is_platform_staff:
            return
        if selectors.is_organization_admin(user=user, tenant_id=tenant_id_from_request(self.request)):
            return
        raise ValidationError(self.error_messages["invalid_login"], code="invalid_login", params={"username": "email"})


class OrganizationAdminSite(admin.AdminSite):
    site_header = "Kanban administration"
    site_title = "Kanban admin"
    index_title = "Users, roles and memberships"
    login_form = OrganizationAdminLoginForm

    def has_permission(self, request: HttpRequest) -> bool:
        return admin_scope(request).allowed

    def each_context(self, request: HttpRequest) -> dict[str, Any]:
        context = super().each_context(request)
        scope = admin_scope(request)
        if scope.membership is not None:
            context["site_header"] = f"{scope.membership.organization.slug}: administration"
        return context


admin_site = OrganizationAdminSite(name="admin")


class ScopedAdmin(admin.ModelAdmin):
    """Rows of the scope's organization only; what an organization admin may do is opt-in per class."""

    organization_lookup = "organization_id"
    platform_only = False
    org_admin_may_change = False
    org_admin_may_delete = False
    org_admin_permission = "manage_members"
    actions = None  # bulk deletes would skip the services (events, last-owner rule)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        queryset = super().get_queryset(request)
        scope = admin_scope(request)
        if scope.platform_staff:
            return queryset
        if scope.organization_id is None or self.platform_only:
            return queryset.none()
        return queryset.filter(**{self.organization_lookup: scope.organization_id}).distinct()

    def _in_scope(self, request: HttpRequest, obj: Any) -> bool:
        return obj is None or self.get_queryset(request).filter(pk=obj.pk).exists()

    def _org_admin_may(self, request: HttpRequest, allowed: bool, obj: Any) -> bool:
        scope = admin_scope(request)
        if scope.platform_staff:
            return True
        return (
            allowed and not self.platform_only and scope.may(self.org_admin_permission) and self._in_scope(request, obj)
        )

    def has_module_permission(self, request: HttpRequest) -> bool:
        scope = admin_scope(request)
        return scope.platform_staff or (scope.allowed and not self.platform_only)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_module_permission(request) and self._in_scope(request, obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return admin_scope(request).platform_staff

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._org_admin_may(request, self.org_admin_may_change, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._org_admin_may(request, self.org_admin_may_delete, obj)

    def _report(self, request: HttpRequest, exc: ServiceError) -> None:
        self.message_user(request, f"Not saved: {exc.message}", level=messages.ERROR)


@admin.register(User, site=admin_site)
class UserAdmin(ScopedAdmin):
    organization_lookup = "memberships__organization_id"
    list_display = ["email", "full_name", "is_active", "date_joined"]
    search_fields = ["email", "full_name"]
    ordering = ["email"]

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        if admin_scope(request).platform_staff:
            return [
                "email",
                "email_verified_at",
                "full_name",
                "is_active",
                "is_staff",
                "is_superuser",
                "date_joined",
                "last_login",
            ]
        return ["email", "email_verified_at", "full_name", "is_active", "date_joined"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return ["email", "email_verified_at", "date_joined", "last_login"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # people arrive through signup or invitations, which set their password themselves

    def save_model(self, request: HttpRequest, obj: User, form: forms.ModelForm, change: bool) -> None:
        changes = {field: form.cleaned_data[field] for field in form.changed_data}
        fresh = User.objects.get(pk=obj.pk)
        services.user_update(user=fresh, actor_id=request.user.pk, **changes)


@admin.register(Membership, site=admin_site)
class MembershipAdmin(ScopedAdmin):
    org_admin_may_change = True
    org_admin_may_delete = True
    list_display = ["user", "role_name", "organization", "created_at"]
    list_filter = ["role__name"]
    search_fields = ["user__email"]
    list_select_related = ["user", "role", "organization"]

    @admin.display(description="role", ordering="role__name")
    def role_name(self, obj: Membership) -> str:
        return obj.role.name

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return ["user", "organization", "created_at"] if obj is not None else ["created_at"]

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        scope = admin_scope(request)
        if db_field.name == "role" and scope.organization_id is not None:
            kwargs["queryset"] = Role.objects.filter(organization_id=scope.organization_id)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request: HttpRequest, obj: Membership, form: forms.ModelForm, change: bool) -> None:
        actor = admin_scope(request).membership
        try:
            if change:
                fresh = Membership.objects.select_related("role", "organization").get(pk=obj.pk)
                saved = services.membership_role_change(membership=fresh, role_name=obj.role.name, actor=actor)
            else:
                saved = services.membership_create(
                    user=obj.user, organization=obj.organization, role_name=obj.role.name, actor_id=request.user.pk
                )
            obj.pk = saved.pk
        except ServiceError as exc:
            self._report(request, exc)

    def delete_model(self, request: HttpRequest, obj: Membership) -> None:
        try:
            services.membership_remove(membership=obj, actor=admin_scope(request).membership)
        except ServiceError as exc:
            self._report(request, exc)


class RoleForm(forms.ModelForm):
    permissions = forms.MultipleChoiceField(
        choices=list(PERMISSIONS.items()), widget=forms.CheckboxSelectMultiple, required=False
    )

    class Meta:
        model = Role
        fields = ["permissions"]


@admin.register(Role, site=admin_site)
class RoleAdmin(ScopedAdmin):
    form = RoleForm
    org_admin_may_change = True
    org_admin_permission = "manage_roles"
    list_display = ["name", "organization", "permission_list"]
    list_filter = ["name"]
    readonly_fields = ["name", "organization"]
    fields = ["name", "organization", "permissions"]

    @admin.display(description="permissions")
    def permission_list(self, obj: Role) -> str:
        return ", ".join(sorted(obj.permissions))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # every organization has the same five roles, made with it

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Role, form: forms.ModelForm, change: bool) -> None:
        try:
            services.role_permissions_set(
                role=Role.objects.get(pk=obj.pk),
                permissions=list(form.cleaned_data["permissions"]),
                actor_id=request.user.pk,
            )
        except ServiceError as exc:
            self._report(request, exc)


class InvitationAddForm(forms.ModelForm):
    """A new invitation, checked by the same service rules as the API (and made by the same service)."""

    role_name = forms.ChoiceField(label="Role", choices=RoleName.choices, initial=RoleName.MEMBER)
    organization_choice = forms.ModelChoiceField(
        label="Organization", queryset=Organization.objects.order_by("slug"), required=False
    )
    scope: AdminScope = AdminScope()

    class Meta:
        model = Invitation
        fields = ["email", "project_id", "project_role"]
        labels = {"project_id": "Project id"}
        help_texts = {
            "project_id": "Optional: a project of the organization (its id, as in GET /api/projects) the person "
            "joins on accepting, and lands on.",
            "project_role": "Their role in that project (member when left empty).",
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.scope.platform_staff:
            del self.fields["organization_choice"]
        self.terms: services.InvitationTerms | None = None
        self.organization: Organization | None = None

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        membership = self.scope.membership
        organization = membership.organization if membership is not None else cleaned.get("organization_choice")
        if organization is None:
            self.add_error("organization_choice", "Choose the organization to invite to.")
        if self.errors:
            return cleaned
        try:
            self.terms = services.invitation_terms_check(
                organization=organization,
                email=cleaned.get("email"),
                role_name=cleaned.get("role_name"),
                actor=membership,
                project_id=cleaned.get("project_id"),
                project_role=cleaned.get("project_role"),
            )
        except ServiceError as exc:
            placed = False
            fields = exc.details.get("fields")
            for name, messages in (fields if isinstance(fields, dict) else {}).items():
                target = "role_name" if name == "role" else name
                if target in self.fields:
                    for message in messages:
                        self.add_error(target, message)
                    placed = True
            if not placed:
                raise ValidationError(exc.message) from None
        self.organization = organization
        return cleaned


@admin.register(Invitation, site=admin_site)
class InvitationAdmin(ScopedAdmin):
    """Invitations are made, resent and revoked through the services, so the link is always mailed."""

    list_display = ["email", "role", "state", "project_id", "invited_by", "sent_at", "expires_at", "organization"]
    list_select_related = ["role", "organization", "invited_by"]
    list_filter = ["role__name"]
    search_fields = ["email"]
    actions = ["resend_invitations", "revoke_invitations"]

    @admin.display(description="state")
    def state(self, obj: Invitation) -> str:
        if obj.accepted_at is not None:
            return "accepted"
        if obj.revoked_at is not None:
            return "revoked"
        return "pending" if obj.is_pending else "expired"

    def has_invite_permission(self, request: HttpRequest) -> bool:
        scope = admin_scope(request)
        return scope.platform_staff or scope.may("manage_members")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self.has_invite_permission(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # an invitation changes only by being resent or revoked (the actions)

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # deleting rows would skip the services
        return actions

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        if obj is None:
            staff = ["organization_choice"] if admin_scope(request).platform_staff else []
            return [*staff, "email", "role_name", "project_id", "project_role"]
        return [
            "email",
            "organization",
            "role",
            "project_id",
            "project_role",
            "invited_by",
            "created_at",
            "sent_at",
            "expires_at",
            "accepted_at",
            "revoked_at",
            "link_mailed_only",
        ]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [] if obj is None else self.get_fields(request, obj)

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        if obj is not None:
            return super().get_form(request, obj, change=change, **kwargs)
        form = super().get_form(request, obj, change=change, **{**kwargs, "form": InvitationAddForm, "fields": None})
        form.scope = admin_scope(request)
        return form

    def save_model(self, request: HttpRequest, obj: Invitation, form: forms.ModelForm, change: bool) -> None:
        if change or not isinstance(form, InvitationAddForm) or form.terms is None or form.organization is None:
            return
        terms = form.terms
        try:
            invitation, _ = services.invitation_create(
                organization=form.organization,
                email=terms.email,
                role_name=terms.role.name,
                actor=admin_scope(request).membership,
                project_id=terms.project_id,
                project_role=terms.project_role,
            )
        except ServiceError as exc:  # something changed since the form was checked (they joined meanwhile)
            self._report(request, exc)
            return
        obj.pk = invitation.pk
        obj.organization = invitation.organization
        obj.email = invitation.email

    def log_addition(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        return super().log_addition(request, obj, message) if obj.pk is not None else None

    def response_add(self, request: HttpRequest, obj: Any, post_url_continue: str | None = None) -> Any:
        if obj.pk is None:
            return HttpResponseRedirect(request.path)
        self.message_user(request, f"The invitation was mailed to {obj.email}.", level=messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:identity_invitation_changelist", current_app=self.admin_site.name))

    @admin.action(
        description="Resend the selected invitations (a new link; the old one stops working)", permissions=["invite"]
    )
    def resend_invitations(self, request: HttpRequest, queryset: QuerySet[Invitation]) -> None:
        sent, refused = [], []
        for invitation in queryset:
            try:
                services.invitation_resend(invitation=invitation, actor=admin_scope(request).membership)
                sent.append(invitation.email)
            except ServiceError as exc:
                refused.append(f"{invitation.email}: {exc.message}")
        if sent:
            self.message_user(request, f"A new link was mailed to {', '.join(sent)}.", level=messages.SUCCESS)
        for reason in refused:
            self.message_user(request, f"Not resent: {reason}", level=messages.ERROR)

    @admin.action(description="Revoke the selected invitations", permissions=["invite"])
    def revoke_invitations(self, request: HttpRequest, queryset: QuerySet[Invitation]) -> None:
        revoked = [
            invitation for invitation in queryset if invitation.accepted_at is None and invitation.revoked_at is None
        ]
        for invitation in revoked:
            services.invitation_revoke(invitation=invitation)
        if revoked:
            self.message_user(request, f"Revoked: {', '.join(i.email for i in revoked)}.", level=messages.SUCCESS)
        else:
            self.message_user(
                request, "Nothing to revoke: those were already accepted or revoked.", level=messages.WARNING
            )


@admin.register(Organization, site=admin_site)
class OrganizationAdmin(ScopedAdmin):
    platform_only = True
    organization_lookup = "id"
    list_display = ["slug", "name", "id", "created_at"]
    search_fields = ["slug", "name"]


@admin.register(SigningKey, site=admin_site)
class SigningKeyAdmin(ScopedAdmin):
    platform_only = True
    list_display = ["kid", "algorithm", "created_at", "retired_at"]
    fields = ["kid", "algorithm", "public_key_pem", "created_at", "retired_at"]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # `manage.py rotate_signing_key`
