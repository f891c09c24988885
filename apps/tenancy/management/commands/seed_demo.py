"""Creates the demo tenant and its owner (development only; idempotent).

DJANGO_SETTINGS_MODULE=config.settings.tenancy python manage.py seed_demo
"""

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from apps.common.exceptions import ServiceError
from apps.tenancy import selectors, services
from apps.tenancy.models import TenantStatus

DEMO_SLUG = "demo"
DEMO_OWNER_EMAIL = "owner@demo.test"
DEMO_OWNER_PASSWORD = "demo-pass-123"  # noqa: S105 - the documented development login


class Command(BaseCommand):
    help = "Create tenant 'demo' (schema mode) and its owner owner@demo.test (development only)."

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEMO_SEED_ALLOWED:
            raise CommandError("seed_demo is for development only: DJANGO_DEBUG (or DEMO_SEED_ALLOWED) is off")
        tenant = selectors.tenant_get_by_slug(slug=DEMO_SLUG)
        if tenant is None:
            try:
                tenant = services.tenant_signup(
                    name="Demo",
                    slug=DEMO_SLUG,
                    owner_email=DEMO_OWNER_EMAIL,
                    owner_password=DEMO_OWNER_PASSWORD,
                    owner_full_name="Demo Owner",
                    owner_email_verified=True,  # the documented demo login needs no mailbox
                )
            except ServiceError as exc:
                raise CommandError(f"demo tenant not created: {exc.message}") from exc
            self.stdout.write(f"created tenant {tenant.slug} ({tenant.id}): {tenant.status}")
        elif tenant.status == TenantStatus.FAILED:
            tenant = services.tenant_provisioning_retry(tenant=tenant)
            self.stdout.write(f"tenant {tenant.slug} had failed; provisioning requested again")
        else:
            self.stdout.write(f"tenant {tenant.slug} ({tenant.id}) exists: {tenant.status}")
