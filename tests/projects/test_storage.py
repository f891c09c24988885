import os
import subprocess
import sys
from pathlib import Path

from django.core.files.storage import FileSystemStorage

from apps.projects.storage import attachment_storage

ROOT = Path(__file__).resolve().parents[2]


def _storage_class_with(env: dict[str, str]) -> subprocess.CompletedProcess:
    code = (
        "import django; django.setup();"
        "from apps.projects.storage import attachment_storage as s; st = s();"
        "print(type(st).__module__ + '.' + type(st).__name__, getattr(st, 'bucket_name', ''),"
        " getattr(st, 'endpoint_url', ''))"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.projects", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_attachments_go_to_the_filesystem_by_default(settings) -> None:
    storage = attachment_storage()

    assert isinstance(storage, FileSystemStorage)
    assert str(storage.location) == settings.MEDIA_ROOT


def test_attachments_storage_s3_selects_an_s3_compatible_backend() -> None:
    result = _storage_class_with(
        {
            "ATTACHMENTS_STORAGE": "s3",
            "ATTACHMENTS_S3_BUCKET": "team-files",
            "ATTACHMENTS_S3_ENDPOINT_URL": "http://127.0.0.1:9000",
        }
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["storages.backends.s3.S3Storage", "team-files", "http://127.0.0.1:9000"]


def test_an_unknown_attachments_storage_stops_the_service_with_its_name() -> None:
    result = _storage_class_with({"ATTACHMENTS_STORAGE": "ftp"})

    assert result.returncode != 0
    assert "ATTACHMENTS_STORAGE='ftp'" in result.stderr
