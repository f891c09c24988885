"""Files attached to tasks: size and type limits, and binary types checked against their magic bytes."""

import unicodedata

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction

from apps.common.exceptions import NotFound
from apps.projects import live, schemas
from apps.projects.db import tenant_db
from apps.projects.errors import InvalidInput
from apps.projects.models import Attachment
from apps.projects.permissions import Caller
from apps.projects.services.shared import locked_task, record_activity


def _sniffed_type(head: bytes) -> str | None:
    signatures = {
        b"\x89PNG\r\n\x1a\n": "image/png",
        b"\xff\xd8\xff": "image/jpeg",
        b"GIF87a": "image/gif",
        b"GIF89a": "image/gif",
        b"%PDF-": "application/pdf",
        b"PK\x03\x04": "application/zip",
    }
    for signature, content_type in signatures.items():
        if head.startswith(signature):
            return content_type
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


BINARY_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf", "application/zip"})


def attachment_filename(name: str | None) -> str:
    """The name a file is kept and offered under: no path, no control characters, at most 255 characters."""
    cleaned = "".join(" " if unicodedata.category(char).startswith("C") else char for char in name or "")
    cleaned = cleaned.replace("/", "_").replace("\\", "_").strip().lstrip(".")
    return (cleaned or "file")[-255:]


def attachment_add(*, caller: Caller, task_id: int, upload: UploadedFile) -> Attachment:
    max_bytes = settings.PROJECTS_ATTACHMENT_MAX_BYTES
    allowed = frozenset(settings.PROJECTS_ATTACHMENT_TYPES)
    content_type = (upload.content_type or "").split(";")[0].strip().lower()
    if upload.size is None or upload.size <= 0:
        raise InvalidInput("The file is empty", code="empty_file")
    if upload.size > max_bytes:
        raise InvalidInput(f"Files are at most {max_bytes} bytes", code="file_too_large", max_bytes=max_bytes)
    if content_type not in allowed:
        raise InvalidInput(
            f"Files of type {content_type or 'unknown'} are not accepted",
            code="file_type_refused",
            allowed=sorted(allowed),
        )
    head = upload.read(16)
    upload.seek(0)
    sniffed = _sniffed_type(head)
    if (content_type in BINARY_TYPES and sniffed != content_type) or (
        content_type not in BINARY_TYPES and sniffed is not None
    ):
        raise InvalidInput("The file's content does not match its type", code="file_type_mismatch")
    filename = attachment_filename(upload.name)
    with transaction.atomic(using=tenant_db()):
        task, _ = locked_task(caller, task_id, "edit_task")
        attachment = Attachment(
            task=task, filename=filename, content_type=content_type, size=upload.size, uploaded_by=caller.user_id
        )
        attachment.file.save(filename, upload, save=False)
        try:
            attachment.save()
            record_activity(task.id, caller, "attachment_added", attachment=attachment.id, filename=filename)
            live.board_broadcast(
                board_id=task.board_id,
                event="attachment.added",
                data={"task": task.id, "attachment": schemas.dump(schemas.AttachmentOut, attachment)},
            )
        except BaseException:
            # The row is rolled back with the transaction; the stored file must go too.
            attachment.file.delete(save=False)
            raise
    return attachment


def attachment_delete(*, caller: Caller, attachment_id: int) -> None:
    with transaction.atomic(using=tenant_db()):
        attachment = Attachment.objects.filter(pk=attachment_id).first()
        if attachment is None:
            raise NotFound("No such attachment")
        task, _ = locked_task(caller, attachment.task_id, "edit_task")
        stored = attachment.file.name
        storage = attachment.file.storage
        attachment.delete()
        record_activity(task.id, caller, "attachment_removed", filename=attachment.filename)
        live.board_broadcast(
            board_id=task.board_id, event="attachment.deleted", data={"task": task.id, "id": attachment_id}
        )
        transaction.on_commit(lambda: storage.delete(stored), using=tenant_db())
