"""Where attachment files go.

Filesystem storage under MEDIA_ROOT by default. To keep them in an S3-compatible store,
install django-storages[s3] and name a storage "attachments" in settings.STORAGES
(`"BACKEND": "storages.backends.s3.S3Storage"` with its OPTIONS); nothing else changes.
"""

import uuid
from pathlib import PurePosixPath

from django.conf import settings
from django.core.files.storage import FileSystemStorage, Storage, storages

ATTACHMENTS_STORAGE_ALIAS = "attachments"


def attachment_storage() -> Storage:
    if ATTACHMENTS_STORAGE_ALIAS in getattr(settings, "STORAGES", {}):
        return storages[ATTACHMENTS_STORAGE_ALIAS]
    media_root = getattr(settings, "MEDIA_ROOT", "") or settings.BASE_DIR / ".data" / "media"
    return FileSystemStorage(location=media_root)


def attachment_upload_to(instance: object, filename: str) -> str:
    # The tenant's schema keeps tenants' files apart; the uuid keeps same-named files apart.
    from apps.projects.db import tenant_connection

    schema = getattr(tenant_connection(), "schema_name", "public")
    suffix = PurePosixPath(filename).suffix.lower()[:10]
    return f"attachments/{schema}/{uuid.uuid4().hex}{suffix}"
