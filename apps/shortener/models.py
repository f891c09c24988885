"""Short links and the visits answered at the gateway's edge, waiting to become events."""

from django.db import models
from django.db.models.functions import Now


class LinkStatus(models.TextChoices):
    ACTIVE = "active"
    EXPIRED = "expired"
    USED_UP = "used_up"
    REVOKED = "revoked"


class Link(models.Model):
    """A short code that points at a URL or shares a task of its organization.

    `visits` counts people only (bots never consume `max_visits`). `ended_reason` is set once,
    in the transaction that publishes the link's one `URLExpired`. `version` grows with every
    change, so the redirect cache never takes an older state over a newer one.
    """

    code = models.CharField(max_length=64, unique=True)
    tenant_id = models.CharField(max_length=64, db_index=True)
    tenant_slug = models.CharField(max_length=63)
    target = models.TextField(blank=True)  # '' for a task link: its target is the shared view
    task_id = models.BigIntegerField(null=True, blank=True)
    task_key = models.CharField(max_length=40, blank=True)
    task_title = models.CharField(max_length=500, blank=True)
    project_id = models.BigIntegerField(null=True, blank=True)
    created_by = models.CharField(max_length=64)
    expires_at = models.DateTimeField(null=True, blank=True)
    max_visits = models.PositiveIntegerField(null=True, blank=True)
    visits = models.PositiveIntegerField(default=0)
    password_hash = models.CharField(max_length=200, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    ended_reason = models.CharField(max_length=20, blank=True, choices=LinkStatus.choices)
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(db_default=Now())
    updated_at = models.DateTimeField(db_default=Now())

    class Meta:
        indexes = [
            models.Index(fields=["tenant_id", "task_id"], name="shortener_link_task"),
            models.Index(fields=["tenant_id", "created_by", "-id"], name="shortener_link_creator"),
            # The expiry sweep: links past their date that have not published URLExpired yet.
            models.Index(
                fields=["expires_at"],
                name="shortener_link_to_expire",
                condition=models.Q(ended_at__isnull=True, expires_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return self.code

    @property
    def has_password(self) -> bool:
        return bool(self.password_hash)

    @property
    def is_task_link(self) -> bool:
        return self.task_id is not None


class VisitInbox(models.Model):
    """A visit the gateway answered from the redirect cache (gateway/shortlinks.py inserts these,
    committed before its 302). `manage.py relay_visits` turns each into one `URLAccessed` in the
    outbox and adds it to its link's `visits`, in one transaction. Never a raw IP: `visitor` is a
    daily-salted hash of IP and user agent."""

    code = models.CharField(max_length=64)
    tenant_id = models.CharField(max_length=64)
    accessed_at = models.DateTimeField(db_default=Now())
    referrer = models.TextField(null=True, blank=True)  # noqa: DJ001
    user_agent = models.TextField(null=True, blank=True)  # noqa: DJ001
    visitor = models.CharField(max_length=64)
    country = models.CharField(max_length=2, null=True, blank=True)  # noqa: DJ001
    bot = models.BooleanField()

    def __str__(self) -> str:
        return f"{self.code} at {self.accessed_at}"
