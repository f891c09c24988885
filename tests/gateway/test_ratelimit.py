import time
import uuid

from gateway.ratelimit import OUTAGE_BACKOFF
from tests.helpers import REDIS_URL, closed_port_url, host_port
from tests.tcp_relay import TcpRelay


def _assert_limited(response, *, limit: int) -> None:
    assert response.status_code == 429, response.text
    assert response.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(response.headers["retry-after"]) <= 60
    assert response.headers["ratelimit-limit"] == str(limit)
    assert response.headers["ratelimit-remaining"] == "0"
    assert int(response.headers["ratelimit-reset"]) >= 1


def test_login_is_limited_per_ip(make_gateway) -> None:
    gateway = make_gateway(rate_limit_login="3/minute")

    answers = [gateway.request("POST", "/api/auth/token", token=None, json={}) for _ in range(4)]

    assert [a.status_code for a in answers[:3]] == [200, 200, 200]
    _assert_limited(answers[3], limit=3)
    # Reading is a different budget.
    assert gateway.get("/api/projects").status_code == 200


def test_the_form_login_spends_the_same_budget_as_the_api(make_gateway) -> None:
    gateway = make_gateway(rate_limit_login="3/minute")

    answers = [
        gateway.request("POST", path, token=None, data={"email": "a@b.c"})
        for path in ("/login", "/api/auth/token", "/login/", "/login")
    ]

    assert [a.status_code for a in answers[:3]] == [200, 200, 200]
    _assert_limited(answers[3], limit=3)
    assert gateway.get("/login", token=None).status_code == 200  # showing the form is not a sign-in


def test_signup_is_limited_per_ip(make_gateway) -> None:
    gateway = make_gateway(rate_limit_signup="2/minute")

    answers = [gateway.request("POST", "/api/tenants", host="localhost:8000", token=None, json={}) for _ in range(3)]

    assert [a.status_code for a in answers[:2]] == [200, 200]
    _assert_limited(answers[2], limit=2)


def test_each_user_has_a_budget(make_gateway, stack) -> None:
    gateway = make_gateway(rate_limit_user="3/minute")
    alice, bob = stack.token(sub="alice"), stack.token(sub="bob")

    for _ in range(3):
        assert gateway.get("/api/tasks/1", token=alice).status_code == 200

    _assert_limited(gateway.get("/api/tasks/1", token=alice), limit=3)
    assert gateway.get("/api/tasks/1", token=bob).status_code == 200


def test_each_ip_has_a_budget(make_gateway) -> None:
    gateway = make_gateway(rate_limit_ip="4/minute")

    statuses = [gateway.get("/s/code", token=None).status_code for _ in range(5)]

    assert statuses == [200, 200, 200, 200, 429]


def test_limits_are_shared_through_redis_between_gateways(make_gateway, stack) -> None:
    first = make_gateway(rate_limit_user="2/minute")
    second = make_gateway(rate_limit_user="2/minute", redis_key_prefix=first.settings.redis_key_prefix)
    token = stack.token(sub="carol")

    assert first.get("/api/tasks/1", token=token).status_code == 200
    assert second.get("/api/tasks/1", token=token).status_code == 200
    assert first.get("/api/tasks/1", token=token).status_code == 429


def test_without_redis_general_traffic_fails_open_but_login_stays_limited(make_gateway) -> None:
    gateway = make_gateway(
        redis_url=closed_port_url().replace("http://", "redis://"),
        rate_limit_ip="2/minute",
        rate_limit_login="2/minute",
    )

    started = time.monotonic()
    reads = [gateway.get("/api/projects").status_code for _ in range(5)]
    logins = [gateway.request("POST", "/api/auth/token", token=None, json={}).status_code for _ in range(3)]

    assert reads == [200] * 5
    assert logins == [200, 200, 429]
    assert time.monotonic() - started < 10


def test_limits_resume_when_redis_comes_back(make_gateway, stack) -> None:
    with TcpRelay(target=host_port(REDIS_URL, 6379)) as relay:
        relay.up()
        gateway = make_gateway(redis_url=relay.url_through(REDIS_URL), rate_limit_user="3/minute")
        token = stack.token(sub=f"dave-{uuid.uuid4().hex[:6]}")
        assert gateway.get("/api/tasks/1", token=token).status_code == 200  # counted: 1

        relay.down()  # the gateway's pipelined connection is cut and nothing accepts
        assert gateway.get("/api/tasks/1", token=token).status_code == 200  # fails open, uncounted
        relay.up()
        time.sleep(OUTAGE_BACKOFF + 0.2)

        statuses = [gateway.get("/api/tasks/1", token=token).status_code for _ in range(3)]

    assert statuses == [200, 200, 429]  # counts 2 and 3 on the reconnected pipe, then full
