"""Where attachment files go.

The "attachments" entry of settings.STORAGES: the filesystem under MEDIA_ROOT by default,
any S3-compatible store with ATTACHMENTS_STORAGE=s3 (config/settings/projects.py).
"""

import uuid
from pathlib import PurePosixPath

from django.core.files.storage import Storage, storages

ATTACHMENTS_STORAGE_ALIAS = "attachments"


def attachment_storage() -> Storage:
    return storages[ATTACHMENTS_STORAGE_ALIAS]


def attachment_upload_to(instance: object, filename: str) -> str:
    # The tenant's schema keeps tenants' files apart; the uuid keeps same-named files apart.
    from apps.projects.db import tenant_connection

    schema = getattr(tenant_connection(), "schema_name", "public")
    suffix = PurePosixPath(filename).suffix.lower()[:10]
    return f"attachments/{schema}/{uuid.uuid4().hex}{suffix}"
