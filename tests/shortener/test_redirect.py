"""Following links: the 302, the password gate and its throttle, limits under concurrency, bots,
the shared task's grant, and visits becoming events (without the raw IP, anywhere)."""

import json
import threading
from datetime import timedelta

import pytest
from django.conf import settings
from django.core import signing
from django.db import connection, connections
from django.test import Client
from django.utils import timezone

from apps.events.models import OutboxEvent
from apps.shortener.models import Link, VisitInbox
from tests.shortener.conftest import TENANT_A, visit

pytestmark = pytest.mark.django_db


def _accessed() -> list[dict]:
    return [json.loads(row.body)["data"] for row in OutboxEvent.objects.filter(event_type="URLAccessed").order_by("id")]


def _link(alice, **fields) -> str:
    response = alice.post("/api/links", {"target": "https://example.com/page", **fields})
    assert response.status_code == 201, response.content
    return response.json()["code"]


def test_a_visit_is_a_302_never_a_301_and_one_event(alice) -> None:
    code = _link(alice)
    response = visit(code, HTTP_REFERER="https://news.example/item?id=1")
    assert response.status_code == 302
    assert response["Location"] == "https://example.com/page"
    assert "no-store" in response["Cache-Control"]
    [event] = _accessed()
    assert event["code"] == code and event["bot"] is False and event["visit_number"] == 1
    assert (event["referrer"], event["country"], event["visitor"]) == ("https://news.example/item?id=1", "DE", "v" * 64)
    assert Link.objects.get(code=code).visits == 1


def test_a_head_request_is_not_a_visit(alice) -> None:
    open_link, limited = _link(alice), _link(alice, max_visits=1)
    probe = visit(open_link, method="head")
    assert probe.status_code == 302 and probe["Location"] == "https://example.com/page"
    gated = visit(limited, method="head")
    assert gated.status_code == 200 and "Location" not in gated
    assert not _accessed() and Link.objects.filter(visits__gt=0).count() == 0
    assert visit(limited).status_code == 302  # the one visit is still there for a person


def test_the_gate_lets_its_form_redirect_to_another_host(alice) -> None:
    gate = visit(_link(alice, password="pw-1234"), html=True)
    policy = gate["Content-Security-Policy"]
    assert "form-action 'self' https: http:" in policy and "script-src 'self'" in policy


def test_unknown_expired_and_revoked_links_never_redirect(alice) -> None:
    assert visit("nosuchcode1").status_code == 404
    assert visit("nosuchcode1").json()["error"]["code"] == "link_not_found"
    page = visit("nosuchcode1", html=True)
    assert (
        page.status_code == 404 and b"does not exist" in page.content and page["Content-Type"].startswith("text/html")
    )
    assert visit("../../etc").status_code == 404

    expired = _link(alice, expires_at="2030-01-01T00:00:00Z")
    Link.objects.filter(code=expired).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = visit(expired)
    assert response.status_code == 410 and "Location" not in response
    assert response.json()["error"]["code"] == "link_expired"
    assert b"has expired" in visit(expired, html=True).content

    revoked = _link(alice)
    alice.delete(f"/api/links/{revoked}")
    assert visit(revoked).status_code == 410
    assert visit(revoked, method="post", data={"password": "x"}).status_code == 410
    assert Link.objects.get(code=revoked).visits == 0
    assert not _accessed()


def test_a_protected_link_asks_for_its_password(alice) -> None:
    code = _link(alice, password="correct horse")
    gate = visit(code, html=True)
    assert gate.status_code == 401 and b'type="password"' in gate.content and b"example.com" not in gate.content
    api = visit(code)
    assert api.status_code == 401 and api.json()["error"]["code"] == "password_required"

    wrong = visit(code, method="post", data={"password": "wrong horse"}, html=True)
    assert wrong.status_code == 401 and b"not right" in wrong.content

    client = Client()
    right = visit(code, method="post", data={"password": "correct horse"}, client=client)
    assert right.status_code == 302 and right["Location"] == "https://example.com/page"
    cookie = right.cookies[f"slu_{code}"]
    assert cookie["httponly"] and cookie["path"] == f"/s/{code}" and cookie["samesite"] == "Lax"
    assert visit(code, client=client).status_code == 302  # unlocked for a while: no second prompt
    as_json = visit(
        code, method="post", data=json.dumps({"password": "correct horse"}), content_type="application/json"
    )
    assert as_json.status_code == 302
    assert Link.objects.get(code=code).visits == 3


def test_an_unlock_cookie_opens_only_its_link_and_only_its_password(alice) -> None:
    first, second = _link(alice, password="first-pass"), _link(alice, password="second-pass")
    client = Client()
    token = visit(first, method="post", data={"password": "first-pass"}, client=client).cookies[f"slu_{first}"].value
    client.cookies[f"slu_{second}"] = token
    assert visit(second, client=client).status_code == 401
    alice.patch(f"/api/links/{first}", {"password": "changed-pass"})
    assert visit(first, client=client).status_code == 401  # a new password ends the old unlocks


def test_guessing_is_throttled_and_never_succeeds(alice) -> None:
    code = _link(alice, password="the-real-one")
    statuses = [visit(code, method="post", data={"password": f"guess-{n}"}).status_code for n in range(8)]
    assert statuses[:5] == [401] * 5 and statuses[5:] == [429] * 3
    refused = visit(code, method="post", data={"password": "the-real-one"})
    assert refused.status_code == 429 and int(refused["Retry-After"]) >= 1
    assert refused.json()["error"]["code"] == "rate_limited"
    page = visit(code, method="post", data={"password": "the-real-one"}, html=True)
    assert page.status_code == 429 and b"Too many password attempts for this link. Try again in" in page.content
    # Other clients are limited per link too: 30 guesses an hour across everyone.
    spread = [visit(code, method="post", data={"password": "x"}, ip=f"203.0.113.{n}").status_code for n in range(40)]
    assert spread.count(429) >= 15
    assert Link.objects.get(code=code).visits == 0


@pytest.mark.django_db(transaction=True)
def test_a_visit_limit_is_exact_under_concurrency(alice) -> None:
    code = _link(alice, max_visits=10)
    barrier, results = threading.Barrier(50), []
    lock = threading.Lock()

    def visitor(number: int) -> None:
        try:
            barrier.wait()
            status = visit(code, ip=f"198.51.100.{number}").status_code
            with lock:
                results.append(status)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=visitor, args=(n,)) for n in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [302] * 10 + [410] * 40
    link = Link.objects.get(code=code)
    assert (link.visits, link.ended_reason) == (10, "used_up")
    assert sorted(event["visit_number"] for event in _accessed()) == list(range(1, 11))
    assert OutboxEvent.objects.filter(event_type="URLExpired").count() == 1


def test_bots_are_recorded_but_never_take_a_visit_nor_pass_a_gate(alice) -> None:
    limited = _link(alice, max_visits=1)
    preview = visit(limited, bot=True, html=True)
    assert preview.status_code == 200 and b"example.com" not in preview.content and "Location" not in preview
    assert Link.objects.get(code=limited).visits == 0
    assert visit(limited).status_code == 302  # the one person's visit is still there
    plain = _link(alice)
    assert visit(plain, bot=True).status_code == 302  # an open link: previewers may follow it
    assert Link.objects.get(code=plain).visits == 0
    bots = [event for event in _accessed() if event["bot"]]
    assert len(bots) == 2 and all("visit_number" not in event for event in bots)


def test_a_task_link_opens_the_shared_view_with_a_grant(alice) -> None:
    link = Link.objects.create(
        code="TaskLink01", tenant_id=TENANT_A, tenant_slug="acme", task_id=42, task_key="WEB-7", created_by="alice"
    )
    response = visit(link.code, HTTP_X_FORWARDED_HOST="localhost:8000")
    assert response.status_code == 302
    location = response["Location"]
    assert location.startswith("http://acme.localhost:8000/shared/TaskLink01?grant=")
    from urllib.parse import parse_qs, urlsplit

    grant = parse_qs(urlsplit(location).query)["grant"][0]
    payload = signing.loads(grant, key=settings.SHARE_GRANT_SECRET, salt="shortener.share-grant", max_age=120)
    assert payload == {"code": "TaskLink01", "tenant": TENANT_A, "task": 42}
    with pytest.raises(signing.BadSignature):
        signing.loads(grant, key="another-secret", salt="shortener.share-grant")
    assert visit(link.code, bot=True).status_code == 200  # previewers never get the grant


@pytest.mark.django_db(transaction=True)
def test_visits_answered_at_the_edge_become_events_once(alice) -> None:
    from apps.shortener.services import visits_relay

    code = _link(alice)
    for bot in (False, False, True):
        VisitInbox.objects.create(
            code=code, tenant_id=TENANT_A, visitor="h" * 64, country="FR", bot=bot, user_agent="UA"
        )
    assert visits_relay() == 3
    assert visits_relay() == 0
    events = _accessed()
    assert [event["bot"] for event in events] == [False, False, True]
    assert [event.get("visit_number") for event in events] == [1, 2, None]
    assert Link.objects.get(code=code).visits == 2
    assert not VisitInbox.objects.exists()


def test_the_raw_ip_is_stored_nowhere(alice, test_redis) -> None:
    secret_ip = "203.0.113.251"
    code = _link(alice, password="pw-for-ip")
    visit(code, method="post", data={"password": "wrong"}, ip=secret_ip)
    visit(code, method="post", data={"password": "pw-for-ip"}, ip=secret_ip)
    visit(_link(alice), ip=secret_ip)
    with connection.cursor() as cursor:
        for table in ("shortener_link", "shortener_visitinbox", "events_outboxevent"):
            cursor.execute(f"SELECT * FROM {table}")  # noqa: S608 - table names are constants
            assert secret_ip not in repr(cursor.fetchall()), table
    for key in test_redis.scan_iter("*"):
        assert secret_ip.encode() not in key
        kind = test_redis.type(key)
        value = test_redis.get(key) if kind == b"string" else repr(test_redis.dump(key)).encode()
        assert secret_ip.encode() not in (value or b""), key
