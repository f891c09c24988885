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
from django.http import HttpRequest

from apps.common.auth import tenant_id_from_request
from apps.common.exceptions import ServiceError
from apps.common.http import client_ip
from apps.identity import selectors, services
from apps.identity.models import Invitation, Membership, Organization, Role, SigningKey, User
from apps.identity.roles import ADMIN_ROLES, PERMISSIONS
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


@admin.register(Invitation, site=admin_site)
class InvitationAdmin(ScopedAdmin):
    list_display = ["email", "role", "organization", "created_at", "expires_at", "accepted_at", "revoked_at"]
    search_fields = ["email"]
    exclude = ["token_hash"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # invitations go through /api/users so the link is mailed


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
