"""Creating, listing, changing and revoking links through the API; their events and cache entries."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.events.models import OutboxEvent
from apps.shortener.models import Link
from tests.shortener.conftest import api_for

pytestmark = pytest.mark.django_db


def _events(kind: str) -> list[dict]:
    return [json.loads(row.body) for row in OutboxEvent.objects.filter(event_type=kind).order_by("id")]


def test_a_link_is_created_with_an_unguessable_code_an_event_and_a_cache_entry(alice, test_redis) -> None:
    response = alice.post("/api/links", {"target": "https://example.com/report?q=1"})
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) >= {"code", "short_url", "target", "task", "expires_at", "max_visits", "visits", "has_password"}
    assert len(body["code"]) >= 8 and body["code"].isalnum()
    assert body["short_url"].endswith(f"/s/{body['code']}")
    assert body["target"] == "https://example.com/report?q=1"
    assert (body["task"], body["visits"], body["has_password"], body["status"]) == (None, 0, False, "active")
    [event] = _events("URLCreated")
    assert event["data"]["code"] == body["code"] and event["tenant_id"] == alice.tenant_id
    cached = json.loads(test_redis.get(f"shortlink:{body['code']}"))
    assert cached["target"] == "https://example.com/report?q=1" and cached["tenant_id"] == alice.tenant_id


def test_codes_do_not_repeat() -> None:
    from apps.shortener.codes import code_generate

    codes = {code_generate("tenant") for _ in range(20_000)}
    assert len(codes) == 20_000


@pytest.mark.parametrize(
    "target",
    [
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "//evil.example/x",
        "/relative",
        "https://user:pass@evil.example",
        "https://localhost:8000/projects/",
        "https://acme.localhost/admin",
        "java\tscript:alert(1)",
        " https://example.com",
        "https://example.com\\@evil.example",
        "ftp://example.com/file",
        "https:example.com",
        "",
    ],
)
def test_a_target_that_is_not_an_http_url_elsewhere_is_refused(alice, target: str) -> None:
    response = alice.post("/api/links", {"target": target})
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "invalid_target"
    assert not Link.objects.exists() and not OutboxEvent.objects.exists()


def test_target_and_task_together_or_neither_are_refused(alice) -> None:
    assert alice.post("/api/links", {}).json()["error"]["code"] == "target_or_task"
    both = alice.post("/api/links", {"target": "https://example.com", "task": 3})
    assert both.status_code == 400 and both.json()["error"]["code"] == "target_or_task"


def test_aliases_are_validated_reserved_and_unique(alice, bob) -> None:
    assert alice.post("/api/links", {"target": "https://example.com", "alias": "q4-report"}).status_code == 201
    taken = bob.post("/api/links", {"target": "https://example.org", "alias": "q4-report"})
    assert taken.status_code == 409 and taken.json()["error"]["code"] == "alias_taken"
    for alias in ("admin", "a", "-x-", "has space", "über", "x" * 65):
        response = alice.post("/api/links", {"target": "https://example.com", "alias": alias})
        assert response.status_code in (400, 422), alias
    assert Link.objects.count() == 1


def test_a_role_without_share_permission_cannot_create_links() -> None:
    viewer = api_for("vera", roles=("viewer",), permissions=frozenset())
    response = viewer.post("/api/links", {"target": "https://example.com"})
    assert response.status_code == 403 and response.json()["error"]["code"] == "permission_denied"


def test_expiry_and_limits_are_checked(alice) -> None:
    past = (timezone.now() - timedelta(hours=1)).isoformat()
    assert alice.post("/api/links", {"target": "https://example.com", "expires_at": past}).status_code == 400
    naive = "2030-01-01T00:00:00"
    assert alice.post("/api/links", {"target": "https://example.com", "expires_at": naive}).status_code == 400
    assert alice.post("/api/links", {"target": "https://example.com", "max_visits": 0}).status_code == 422
    assert alice.post("/api/links", {"target": "https://example.com", "password": "abc"}).status_code == 400
    assert not Link.objects.exists()


def test_a_password_is_stored_as_an_argon2_hash_and_never_shown(alice) -> None:
    response = alice.post("/api/links", {"target": "https://example.com", "password": "open sesame 42"})
    assert response.status_code == 201
    assert response.json()["has_password"] is True
    assert "open sesame" not in response.content.decode()
    link = Link.objects.get()
    assert link.password_hash.startswith("$argon2id$") and "open sesame" not in link.password_hash
    assert all("open sesame" not in row.body and "argon2" not in row.body for row in OutboxEvent.objects.all())
    listed = alice.get("/api/links").content.decode()
    assert "argon2" not in listed and "open sesame" not in listed


def test_a_protected_link_is_never_cached_for_the_gateway(alice, test_redis) -> None:
    code = alice.post("/api/links", {"target": "https://example.com", "password": "s3cret!"}).json()["code"]
    assert json.loads(test_redis.get(f"shortlink:{code}"))["gone"] is True
    limited = alice.post("/api/links", {"target": "https://example.com", "max_visits": 3}).json()["code"]
    assert json.loads(test_redis.get(f"shortlink:{limited}"))["gone"] is True


def test_the_list_is_paginated_and_filtered(alice, bob, admin) -> None:
    for number in range(30):
        alice.post("/api/links", {"target": f"https://example.com/{number}"})
    bob.post("/api/links", {"target": "https://example.org/bob"})
    first = alice.get("/api/links", limit=25).json()
    assert first["count"] == 30 and len(first["items"]) == 25 and first["next"]
    assert first["items"][0]["target"] == "https://example.com/29"  # newest first
    second = alice.client.get(first["next"], **alice._headers()).json()
    assert len(second["items"]) == 5 and second["next"] is None
    assert bob.get("/api/links").json()["count"] == 1  # a member sees their own
    assert admin.get("/api/links").json()["count"] == 31  # an admin sees the organization's
    assert admin.get("/api/links", mine="true").json()["count"] == 0
    assert alice.get("/api/links", q="example.com/7").json()["count"] == 1
    assert alice.get("/api/links", status="revoked").json()["count"] == 0
    assert alice.get("/api/links", status="nonsense").status_code == 422


def test_only_the_creator_and_admins_change_or_revoke_a_link(alice, bob, admin, test_redis) -> None:
    code = alice.post("/api/links", {"target": "https://example.com"}).json()["code"]
    assert bob.patch(f"/api/links/{code}", {"max_visits": 5}).status_code == 404  # not bob's to see
    assert bob.delete(f"/api/links/{code}").status_code == 404
    changed = alice.patch(f"/api/links/{code}", {"target": "https://example.com/v2", "max_visits": 5})
    assert changed.status_code == 200, changed.content
    assert (changed.json()["target"], changed.json()["max_visits"]) == ("https://example.com/v2", 5)
    assert json.loads(test_redis.get(f"shortlink:{code}"))["gone"] is True  # limited now: not for the edge
    assert admin.delete(f"/api/links/{code}").status_code == 204
    assert alice.get(f"/api/links/{code}").json()["status"] == "revoked"
    [ended] = _events("URLExpired")
    assert ended["data"] == {"code": code, "reason": "revoked", "task_id": None}
    assert alice.patch(f"/api/links/{code}", {"max_visits": 9}).json()["error"]["code"] == "link_ended"
    assert alice.delete(f"/api/links/{code}").status_code == 204  # revoking twice changes nothing
    assert len(_events("URLExpired")) == 1


def test_a_change_clears_expiry_limit_and_password_with_null(alice) -> None:
    code = alice.post(
        "/api/links",
        {
            "target": "https://example.com",
            "max_visits": 4,
            "password": "hunter22",
            "expires_at": "2030-01-01T00:00:00Z",
        },
    ).json()["code"]
    cleared = alice.patch(f"/api/links/{code}", {"max_visits": None, "password": None, "expires_at": None}).json()
    assert (cleared["max_visits"], cleared["has_password"], cleared["expires_at"]) == (None, False, None)


def test_another_organization_sees_nothing(alice, outsider) -> None:
    code = alice.post("/api/links", {"target": "https://example.com"}).json()["code"]
    for response in (
        outsider.get(f"/api/links/{code}"),
        outsider.patch(f"/api/links/{code}", {"max_visits": 1}),
        outsider.delete(f"/api/links/{code}"),
        outsider.get(f"/api/links/{code}/qr.png"),
    ):
        assert response.status_code == 404
    assert outsider.get("/api/links").json()["count"] == 0
    assert Link.objects.get().revoked_at is None


def test_a_token_of_one_organization_is_refused_on_another_host(alice) -> None:
    response = alice.client.get(
        "/api/links", **{**alice._headers(), "HTTP_X_TENANT_ID": "00000000-0000-0000-0000-00000000000b"}
    )
    assert response.status_code == 403
    assert alice.client.get("/api/links").status_code in (401, 404)


def test_qr_codes_come_as_png_and_svg(alice) -> None:
    import struct

    code = alice.post("/api/links", {"target": "https://example.com"}).json()["code"]
    png = alice.get(f"/api/links/{code}/qr.png")
    assert png.status_code == 200 and png["Content-Type"] == "image/png"
    assert png.content[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png.content[16:24])  # IHDR
    assert width == height >= 150
    svg = alice.get(f"/api/links/{code}/qr.svg")
    assert svg["Content-Type"] == "image/svg+xml" and svg.content.lstrip().startswith(b"<svg")


def test_the_sweep_publishes_one_url_expired_per_link(alice) -> None:
    from apps.shortener.services import links_expire_due

    code = alice.post("/api/links", {"target": "https://example.com", "expires_at": "2030-01-01T00:00:00Z"}).json()[
        "code"
    ]
    Link.objects.filter(code=code).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert links_expire_due() == 1
    assert links_expire_due() == 0
    [event] = _events("URLExpired")
    assert event["data"]["reason"] == "expired"
    assert alice.get(f"/api/links/{code}").json()["status"] == "expired"
