"""The catalog: every type has a schema and a routing key; bad events are refused with the reason."""

import json

import pytest
from jsonschema import Draft202012Validator

from apps.events.catalog import (
    EVENT_TYPES,
    InvalidEvent,
    Isolation,
    envelope_create,
    envelope_parse,
    latest_version,
    routing_key_for,
    schema_get,
)
from tests.events.samples import SAMPLES


def test_routing_keys_put_a_dot_after_the_aggregate() -> None:
    assert routing_key_for("TenantCreated") == "tenant.created"
    assert routing_key_for("UserPermissionChanged") == "user.permission_changed"
    assert routing_key_for("TaskStatusChanged") == "task.status_changed"
    assert routing_key_for("URLAccessed") == "url.accessed"
    assert routing_key_for("TenantProvisioningFailed") == "tenant.provisioning_failed"
    assert len({routing_key_for(event_type) for event_type in EVENT_TYPES}) == len(EVENT_TYPES)


def test_tenant_created_names_the_isolations_the_catalog_defines() -> None:
    assert schema_get("TenantCreated")["properties"]["isolation"]["enum"] == list(Isolation.values)


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_every_type_has_a_valid_v1_schema_and_a_sample_that_passes(event_type: str) -> None:
    schema = schema_get(event_type, 1)
    Draft202012Validator.check_schema(schema)
    assert latest_version(event_type) == 1
    envelope = envelope_create(event_type, SAMPLES[event_type], tenant_id=None, actor_id="12")
    assert envelope_parse(envelope.to_json()) == envelope


@pytest.mark.parametrize(
    ("event_type", "data", "reason"),
    [
        ("URLExpired", {"code": "Ab3dE"}, 'URLExpired v1 data: "reason" is a required property'),
        ("TaskAssigned", {**SAMPLES["TaskAssigned"], "assignees": "12"}, 'data.assignees: "12" is not of type "array"'),
        (
            "TenantCreated",
            {**SAMPLES["TenantCreated"], "isolation": "cluster"},
            'data.isolation: "cluster" is not one of',
        ),
        ("URLCreated", {**SAMPLES["URLCreated"], "expires_at": "tomorrow"}, '"tomorrow" is not a "date-time"'),
        ("TaskMoved", {}, "Unknown event type 'TaskMoved'"),
        ("URLExpired", {"code": "Ab3dE", "reason": object()}, "URLExpired data is not JSON"),
        ("URLExpired", {"code": "Ab3dE", "reason": "x", "ratio": float("nan")}, "URLExpired data is not JSON"),
    ],
)
def test_invalid_data_is_refused_with_the_reason(event_type: str, data: dict, reason: str) -> None:
    with pytest.raises(InvalidEvent) as refused:
        envelope_create(event_type, data, tenant_id=None, actor_id=None)
    assert reason in str(refused.value)


def test_fields_a_producer_adds_later_are_accepted() -> None:
    envelope = envelope_create("URLExpired", {"code": "x", "reason": "expired", "swept_by": "cron"}, tenant_id=None,
                               actor_id=None)  # fmt: skip
    assert envelope.data["swept_by"] == "cron"


def test_an_envelope_is_utc_and_carries_a_trace() -> None:
    envelope = envelope_create("URLExpired", SAMPLES["URLExpired"], tenant_id="t", actor_id=None, trace_id="req-1")
    document = json.loads(envelope.to_json())
    assert document["occurred_at"].endswith("Z") and document["trace_id"] == "req-1"
    assert set(document) == {"id", "type", "version", "occurred_at", "tenant_id", "actor_id", "trace_id", "data"}
    assert envelope_create("URLExpired", SAMPLES["URLExpired"], tenant_id=None, actor_id=None).trace_id


def _document(**changes: object) -> bytes:
    document = json.loads(envelope_create("URLExpired", SAMPLES["URLExpired"], tenant_id=None, actor_id=None).to_json())
    document.update(changes)
    return json.dumps(document).encode()


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "The message body is not JSON"),
        (_document(version=2), "URLExpired has no schema for version 2"),
        (_document(type="NoSuchThing"), "Unknown event type 'NoSuchThing'"),
        (_document(occurred_at="last tuesday"), 'envelope.occurred_at: "last tuesday" is not a "date-time"'),
        (_document(id="42"), 'envelope.id: "42" does not match'),
        (_document(data={"code": 5, "reason": "x"}), 'data.code: 5 is not of type "string"'),
        (_document(extra=1), "Additional properties are not allowed ('extra' was unexpected)"),
        (_document(data={"code": "x", "reason": "x", "ratio": float("nan")}), "NaN is not a JSON value"),
        (b'{"data": ' + b'{"a": ' * 100_000 + b"1" + b"}" * 100_001, "The message body is nested too deeply"),
    ],
)
def test_a_message_that_is_not_a_valid_event_is_refused_with_the_reason(body: bytes, reason: str) -> None:
    with pytest.raises(InvalidEvent) as refused:
        envelope_parse(body)
    assert reason in str(refused.value)
