import uuid

from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils import timezone

from apps.identity.roles import ProjectRole, RoleName


class UserManager(BaseUserManager["User"]):
    def create_user(self, email: str, password: str | None = None, **fields: object) -> "User":
        user = self.model(email=self.normalize_email(email).lower(), **fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **fields: object) -> "User":
        fields.setdefault("is_staff", True)
        fields.setdefault("is_superuser", True)
        return self.create_user(email, password, **fields)


class User(AbstractBaseUser, PermissionsMixin):
    """A person. Their access to an organization is a membership, not a field here."""

    email = models.EmailField(unique=True)
    full_name = models.CharField(max_length=200, blank=True)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False, help_text="Platform staff: may use the apex admin.")
    date_joined = models.DateTimeField(default=timezone.now)
    # When the person proved they read this address (a link mailed only to it). Until then the
    # account is whoever typed the address: it may use the organization it created, but it
    # joins no other organization, and verifying ends every password and session set before.
    email_verified_at = models.DateTimeField(null=True, blank=True)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"

    def __str__(self) -> str:
        return self.email

    @property
    def email_verified(self) -> bool:
        return self.email_verified_at is not None

    @property
    def is_platform_staff(self) -> bool:
        return self.is_active and self.is_staff and self.is_superuser


class Organization(models.Model):
    """A tenant as identity knows it: the id and slug the tenancy service assigned."""

    id = models.UUIDField(primary_key=True)
    slug = models.SlugField(max_length=63, unique=True)
    name = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.slug


class Role(models.Model):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="roles")
    name = models.CharField(max_length=32, choices=RoleName.choices)
    permissions = ArrayField(models.CharField(max_length=64), default=list, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "name"], name="role_unique_per_organization")]
        ordering = ["organization_id", "id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.organization_id})"


class Membership(models.Model):
    """A user's place in one organization. A user may belong to several."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    role = models.ForeignKey(Role, on_delete=models.PROTECT, related_name="memberships")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "organization"], name="membership_unique_per_organization")
        ]
        ordering = ["organization_id", "id"]

    def __str__(self) -> str:
        return f"{self.user_id} in {self.organization_id} as {self.role.name}"


class Invitation(models.Model):
    """An emailed offer of membership. Only a hash of the link's token is stored."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.ForeignKey(Role, on_delete=models.CASCADE, related_name="invitations")
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    invited_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # True when the link went only to the mailbox (not also into the inviter's API answer), so
    # accepting it proves the address; False with INVITATION_LINK_IN_RESPONSE.
    link_mailed_only = models.BooleanField(default=False)
    # When the current link was mailed: at creation, then at each resend (which replaces the token).
    sent_at = models.DateTimeField(default=timezone.now)
    # A project of the projects service the invitee joins on accepting (published in
    # UserPermissionChanged; the projects service adds them), and the role they get there.
    project_id = models.PositiveBigIntegerField(null=True, blank=True)
    project_role = models.CharField(max_length=10, choices=ProjectRole.choices, blank=True, default="")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.email} to {self.organization_id}"

    @property
    def is_pending(self) -> bool:
        return self.accepted_at is None and self.revoked_at is None and self.expires_at > timezone.now()


class SigningKey(models.Model):
    """An RS256 key pair. The newest unretired key signs; retired keys still verify for a while."""

    kid = models.CharField(max_length=64, unique=True)
    algorithm = models.CharField(max_length=16, default="RS256")
    # PKCS#8, encrypted with a key derived from SECRET_KEY so a database dump alone cannot sign.
    private_key_pem = models.TextField()
    public_key_pem = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.kid


class RefreshToken(models.Model):
    """One issued refresh token. Tokens rotated from one login share a family."""

    jti = models.CharField(max_length=64, unique=True)
    family = models.UUIDField(default=uuid.uuid4, db_index=True)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="refresh_tokens")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(db_index=True)  # services.refresh_tokens_purge finds the expired by it
    used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # The access token issued beside this refresh token, so ending the session ends it too.
    access_jti = models.CharField(max_length=64, blank=True, default="")
    access_expires_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.jti
