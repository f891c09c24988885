"""The event catalog: the envelope, every event type, and its versioned JSON Schemas.

Schemas live beside this module as `schemas/<Type>.v<N>.json` (the data of one type at one
version) and `schemas/envelope.json`. Publishing writes the newest version of a type;
consuming accepts any version that has a schema file. Schemas only grow (new optional
fields), so old consumers keep working: a breaking change is a new version.
"""

import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema_rs
from django.db import models

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"

EVENT_TYPES: tuple[str, ...] = (
    "UserCreated",
    "UserUpdated",
    "UserPermissionChanged",
    "TenantCreated",
    "TenantProvisioned",
    "TenantProvisioningFailed",
    "ProjectCreated",
    "ProjectUpdated",
    "ProjectUserAdded",
    "TaskCreated",
    "TaskStatusChanged",
    "TaskAssigned",
    "TaskCommentAdded",
    "URLCreated",
    "URLAccessed",
    "URLExpired",
)


# Values that events carry and that more than one service stores: each is defined once, here,
# and both the tenancy service (apps/tenancy/models.py) and the projects service's tenant
# registry (apps/projects/tenants/models.py) use it. TenantCreated's `isolation` is one of
# Isolation's values (its schema lists them; tests/events check the two agree).


class Isolation(models.TextChoices):
    """Where a tenant's data lives: a schema of the shared database, or a database of its own."""

    SCHEMA = "schema"
    DATABASE = "database"


class TenantStatus(models.TextChoices):
    """How far a tenant's provisioning is: `pending → provisioning → active | failed`."""

    PENDING = "pending"
    PROVISIONING = "provisioning"
    ACTIVE = "active"
    FAILED = "failed"


_SCHEMA_FILE = re.compile(r"^(?P<type>[A-Z][A-Za-z]+)\.v(?P<version>\d+)\.json$")
# An acronym ("URL") or a capitalised word ("Status").
_WORDS = re.compile(r"[A-Z]+(?=[A-Z][a-z]|$)|[A-Z][a-z0-9]+")


class InvalidEvent(ValueError):
    """An event (or a message claiming to be one) that breaks the catalog's rules."""


@dataclass(frozen=True)
class Envelope:
    id: str
    type: str
    version: int
    occurred_at: datetime
    tenant_id: str | None
    actor_id: str | None
    trace_id: str | None
    data: dict = field(default_factory=dict)

    @property
    def routing_key(self) -> str:
        return routing_key_for(self.type)

    def as_dict(self) -> dict[str, Any]:
        # Spelled out rather than dataclasses.asdict(), which deep-copies `data`: a fifth of
        # publish()'s Python time (bench/events.py). `data` is the caller's JSON round trip.
        return {
            "id": self.id,
            "type": self.type,
            "version": self.version,
            "occurred_at": self.occurred_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "tenant_id": self.tenant_id,
            "actor_id": self.actor_id,
            "trace_id": self.trace_id,
            "data": self.data,
        }

    def to_json(self) -> bytes:
        return json.dumps(self.as_dict(), separators=(",", ":"), ensure_ascii=False).encode()


def routing_key_for(event_type: str) -> str:
    """`TaskStatusChanged` -> `task.status_changed`: the aggregate, a dot, then what happened."""
    words = [word.lower() for word in _WORDS.findall(event_type)]
    if len(words) < 2 or "".join(_WORDS.findall(event_type)) != event_type:
        raise InvalidEvent(f"{event_type!r} is not an event type name (Aggregate + PastTense, e.g. TaskCreated)")
    return f"{words[0]}.{'_'.join(words[1:])}"


def _check_date_time(value: str) -> bool:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return False
    return parsed.tzinfo is not None


@dataclass(frozen=True)
class _Schema:
    """A schema document and its compiled validator.

    jsonschema-rs rather than the pure-Python jsonschema: 1.4 µs instead of 63 µs to check an
    envelope and its data, which was a fifth of the consumer's time per event (bench/events.py).
    """

    document: dict
    validator: jsonschema_rs.Draft202012Validator

    @classmethod
    def load(cls, path: Path) -> "_Schema":
        document = json.loads(path.read_text())
        jsonschema_rs.meta.validate(document)
        validator = jsonschema_rs.Draft202012Validator(
            document, formats={"date-time": _check_date_time}, validate_formats=True
        )
        return cls(document, validator)

    def first_error(self, instance: object) -> jsonschema_rs.ValidationError | None:
        if self.validator.is_valid(instance):
            return None
        return min(self.validator.iter_errors(instance), key=lambda error: [str(p) for p in error.instance_path])


@cache
def _schema_files() -> dict[tuple[str, int], Path]:
    found = {}
    for path in SCHEMA_DIR.glob("*.json"):
        match = _SCHEMA_FILE.match(path.name)
        if match:
            found[(match["type"], int(match["version"]))] = path
    return found


@cache
def _data_schema(event_type: str, version: int) -> _Schema:
    path = _schema_files().get((event_type, version))
    if path is None:
        if event_type not in EVENT_TYPES:
            raise InvalidEvent(f"Unknown event type {event_type!r}")
        raise InvalidEvent(f"{event_type} has no schema for version {version}")
    return _Schema.load(path)


@cache
def _envelope_schema() -> _Schema:
    return _Schema.load(SCHEMA_DIR / "envelope.json")


def latest_version(event_type: str) -> int:
    versions = [version for (name, version) in _schema_files() if name == event_type]
    if event_type not in EVENT_TYPES or not versions:
        raise InvalidEvent(f"Unknown event type {event_type!r}; known types: {', '.join(EVENT_TYPES)}")
    return max(versions)


def schema_get(event_type: str, version: int | None = None) -> dict:
    return _data_schema(event_type, version or latest_version(event_type)).document


def _describe(error: jsonschema_rs.ValidationError, prefix: str) -> str:
    where = ".".join(str(part) for part in error.instance_path)
    return f"{prefix}{'.' + where if where else ''}: {error.message}"


def data_validate(event_type: str, data: object, *, version: int | None = None) -> None:
    version = version or latest_version(event_type)
    error = _data_schema(event_type, version).first_error(data)
    if error is not None:
        raise InvalidEvent(_describe(error, f"{event_type} v{version} data"))


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON value")


def _json_loads(text: str | bytes) -> Any:
    """json.loads without Python's NaN and Infinity, which other readers (PostgreSQL's jsonb) refuse."""
    return json.loads(text, parse_constant=_refuse_constant)


def envelope_create(
    event_type: str,
    data: dict,
    *,
    tenant_id: object,
    actor_id: object,
    trace_id: str | None = None,
) -> Envelope:
    """A new, validated envelope for the newest version of `event_type`."""
    version = latest_version(event_type)
    try:
        # Through JSON and back: what consumers will see is exactly what was validated.
        data = _json_loads(json.dumps(data, allow_nan=False))
    except (TypeError, ValueError, RecursionError) as exc:
        raise InvalidEvent(f"{event_type} data is not JSON: {exc}") from None
    data_validate(event_type, data, version=version)
    return Envelope(
        id=str(uuid.uuid4()),
        type=event_type,
        version=version,
        occurred_at=datetime.now(UTC),
        tenant_id=None if tenant_id is None else str(tenant_id),
        actor_id=None if actor_id is None else str(actor_id),
        trace_id=trace_id or uuid.uuid4().hex,
        data=data,
    )


def envelope_parse(body: bytes | str | dict) -> Envelope:
    """An envelope from a message body, checked against the envelope and its type's schema."""
    if isinstance(body, dict):
        document = body
    else:
        try:
            document = _json_loads(body)
        except RecursionError:
            # Not the consumer's problem to crash on: refused like any other bad body, so it is
            # dead-lettered instead of redelivered forever.
            raise InvalidEvent("The message body is nested too deeply") from None
        except (TypeError, ValueError) as exc:
            raise InvalidEvent(f"The message body is not JSON: {exc}") from None
    error = _envelope_schema().first_error(document)
    if error is not None:
        raise InvalidEvent(_describe(error, "envelope"))
    data_validate(document["type"], document["data"], version=document["version"])
    return Envelope(
        id=str(uuid.UUID(document["id"])),
        type=document["type"],
        version=document["version"],
        occurred_at=datetime.fromisoformat(document["occurred_at"]).astimezone(UTC),
        tenant_id=document["tenant_id"],
        actor_id=document["actor_id"],
        trace_id=document["trace_id"],
        data=document["data"],
    )
