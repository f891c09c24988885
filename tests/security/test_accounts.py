"""Account attacks (issue 8 items 1, 2, 6, 12), replayed through the gateway of a launcher-booted stack.

- Pre-hijacking: an attacker signs up with the victim's address and a password of their own;
  the victim's organization invites that address; the attacker's password must never get in,
  and the victim's verification (from the mail the launcher's SMTP server caught) ends the
  attacker's sessions and tokens.
- The signup oracle: an existing address and a new one get the same status, body and timing.
- Login limits: rotating X-Forwarded-For escapes nothing; the sign-in form counts; 20
  concurrent wrong passwords are not 20 guesses.
- Logout ends the access token, not only the refresh token.

Every request goes through the gateway (`client`, Host header picks apex or tenant). The
limits these attacks trip are reset between tests (`fresh_limits`) so one replay cannot
make the next pass or fail.
"""

import json
import re
import secrets
import statistics
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.mail import mailcatcher
from tests.security.conftest import PORT_BASE, limits_reset, tenant_host

pytestmark = pytest.mark.e2e

APEX = {"Host": f"localhost:{PORT_BASE}"}
DEMO = {"Host": tenant_host("demo")}
DEMO_OWNER = ("owner@demo.test", "demo-pass-123")
ACTIVE_TIMEOUT = 60
MAIL_TIMEOUT = 15


def _run() -> str:
    return secrets.token_hex(3)


def _assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    if code is not None:
        assert error["code"] == code, error
    assert error["message"]
    return error


def _signup(client: httpx.Client, *, slug: str, email: str, password: str) -> httpx.Response:
    return client.post(
        "/api/tenants",
        headers=APEX,
        json={"name": f"Org {slug}", "slug": slug, "owner_email": email, "owner_password": password},
    )


def _wait_active(client: httpx.Client, slug: str) -> None:
    deadline = time.monotonic() + ACTIVE_TIMEOUT
    while True:
        status = client.get(f"/api/tenants/{slug}", headers=APEX).json()
        if status.get("status") == "active":
            return
        assert status.get("status") != "failed", status
        assert time.monotonic() < deadline, status
        time.sleep(0.3)


def _login(client: httpx.Client, host: dict, email: str, password: str, **headers: str) -> httpx.Response:
    return client.post("/api/auth/token", headers={**host, **headers}, json={"email": email, "password": password})


def _bearer(host: dict, access: str) -> dict:
    return {**host, "Authorization": f"Bearer {access}"}


def _mail_token(mail_dir: Path, address: str, path: str, *, count: int = 1) -> str:
    """The token after `path` in the newest of at least `count` mails to `address`."""
    deadline = time.monotonic() + MAIL_TIMEOUT
    while True:
        received = mailcatcher().mail_to(mail_dir, address)
        if len(received) >= count:
            match = re.search(re.escape(path) + r"([^\s/]+)", received[-1].text)
            if match:
                return match.group(1)
        assert time.monotonic() < deadline, f"no mail to {address} with {path} in {mail_dir}"
        time.sleep(0.2)


def _demo_owner_access(client: httpx.Client) -> str:
    response = _login(client, DEMO, *DEMO_OWNER)
    assert response.status_code == 200, response.text
    return response.json()["access"]


def _form_verify(client: httpx.Client, token: str, password: str) -> httpx.Response:
    page = client.get(f"/login/verify/{token}", headers=APEX)
    assert page.status_code == 200, page.text
    csrf = page.cookies["csrftoken"]
    return client.post(
        f"/login/verify/{token}",
        headers={**APEX, "Cookie": f"csrftoken={csrf}"},
        data={"password": password, "csrfmiddlewaretoken": csrf},
    )


# Item 1: pre-hijacking


def test_a_pre_hijacked_address_never_lets_the_attackers_password_in(client: httpx.Client, mail_dir: Path) -> None:
    run = _run()
    victim = f"victim-{run}@corp.test"
    attacker_password, victim_password = "attacker-chose-this-1", "victim-owns-this-2"

    # The attacker signs up first, with the victim's address and their own password.
    assert _signup(client, slug=f"trap-{run}", email=victim, password=attacker_password).status_code == 201
    _wait_active(client, f"trap-{run}")
    trap = {"Host": tenant_host(f"trap-{run}")}
    attacker = _login(client, trap, victim, attacker_password).json()
    assert client.get("/api/auth/me", headers=_bearer(trap, attacker["access"])).status_code == 200

    # The victim's organization invites the address. Even holding the link, the attacker's password joins nothing.
    invited = client.post("/api/users", headers=_bearer(DEMO, _demo_owner_access(client)), json={"email": victim})
    assert invited.status_code == 201, invited.text
    invite_token = invited.json()["accept_url"].rsplit("/", 1)[1]  # the dev stack shows the link to the inviter
    for body in ({"token": invite_token, "password": attacker_password}, {"token": invite_token}):
        _assert_error(client.post("/api/users/invitations/accept", headers=DEMO, json=body), 403, "email_unverified")
    _assert_error(_login(client, DEMO, victim, attacker_password), 401, "invalid_credentials")

    # The victim verifies from the mail, setting their own password: the attacker's access ends.
    verify_token = _mail_token(mail_dir, victim, "/login/verify/")
    verified = _form_verify(client, verify_token, victim_password)
    assert verified.status_code == 200, verified.text
    assert "Address verified" in verified.text

    _assert_error(client.get("/api/auth/me", headers=_bearer(trap, attacker["access"])), 401, "token_revoked")
    _assert_error(client.post("/api/auth/refresh", headers=trap, json={"refresh": attacker["refresh"]}), 401)
    _assert_error(_login(client, trap, victim, attacker_password), 401, "invalid_credentials")
    _assert_error(
        client.post(
            "/api/users/invitations/accept", headers=DEMO, json={"token": invite_token, "password": attacker_password}
        ),
        401,
        "invalid_credentials",
    )
    # The victim joins by signing in as the account they now hold.
    accepted = client.post(
        "/api/users/invitations/accept", headers=DEMO, json={"token": invite_token, "password": victim_password}
    )
    assert accepted.status_code == 201, accepted.text
    assert _login(client, DEMO, victim, victim_password).status_code == 200
    # The link worked once.
    assert client.get(f"/login/verify/{verify_token}", headers=APEX).status_code == 404


# Item 2: the signup oracle


def _signup_answer(response: httpx.Response) -> tuple[int, str]:
    """Status and body, less what the signer chose or what is unique per tenant."""
    body = {key: value for key, value in response.json().items() if key not in {"id", "slug", "name"}}
    return response.status_code, json.dumps(body, sort_keys=True)


def test_signup_answers_alike_for_existing_and_new_addresses(client: httpx.Client, mail_dir: Path) -> None:
    run = _run()
    existing, new, wrong = [], [], []

    def timed(kind: str, round_: int) -> None:
        if kind == "new":
            email, password, into = f"fresh-{run}-{round_}@corp.test", "a-fresh-pass-93", new
        else:
            email, password, into = DEMO_OWNER[0], DEMO_OWNER[1], existing
        started = time.perf_counter()
        response = _signup(client, slug=f"{kind}-{run}-{round_}", email=email, password=password)
        into.append((time.perf_counter() - started, response))

    for round_ in range(5):
        # Alternate which goes first, so the load each signup leaves behind (provisioning) falls on both.
        for kind in ("new", "old") if round_ % 2 == 0 else ("old", "new"):
            timed(kind, round_)
        wrong.append(_signup(client, slug=f"bad-{run}-{round_}", email=DEMO_OWNER[0], password="not-the-pass-77"))
        limits_reset()  # 15 signups from one address would otherwise meet the signup limit

    answers = {_signup_answer(response) for _, response in new + existing} | {_signup_answer(r) for r in wrong}
    assert len(answers) == 1, answers
    status, body = answers.pop()
    assert status == 201 and json.loads(body)["status"] in ("pending", "provisioning")
    assert sorted(new[0][1].json()) == sorted(existing[0][1].json()) == sorted(wrong[0].json())
    new_median = statistics.median(seconds for seconds, _ in new)
    existing_median = statistics.median(seconds for seconds, _ in existing)
    print(f"signup medians: new address {new_median * 1000:.0f} ms, existing {existing_median * 1000:.0f} ms")
    assert 1 / 3 < existing_median / new_median < 3, (new_median, existing_median)
    # The demo owner's account was not touched, and its owner was told by mail instead.
    assert _login(client, DEMO, *DEMO_OWNER).status_code == 200
    notices = [mail for mail in mailcatcher().mail_to(mail_dir, DEMO_OWNER[0]) if "tried to create" in mail.subject]
    assert len(notices) >= 10


# Item 6: login limits


@pytest.fixture
def target(client: httpx.Client) -> tuple[dict, str, str]:
    """A fresh member of the demo organization, so locking it out costs nobody else."""
    run = _run()
    email, password = f"target-{run}@demo.test", "target-pass-4410"
    invited = client.post("/api/users", headers=_bearer(DEMO, _demo_owner_access(client)), json={"email": email})
    token = invited.json()["accept_url"].rsplit("/", 1)[1]
    accepted = client.post("/api/users/invitations/accept", headers=DEMO, json={"token": token, "password": password})
    assert accepted.status_code == 201, accepted.text
    return DEMO, email, password


def test_rotating_forwarded_for_does_not_escape_the_login_limit(client: httpx.Client, target) -> None:
    host, email, password = target
    statuses = []
    for attempt in range(25):
        response = _login(
            client, host, f"nobody-{attempt}@demo.test", "wrong-pass-0000", **{"X-Forwarded-For": f"10.{attempt}.0.1"}
        )
        statuses.append(response.status_code)
    assert statuses[-1] == 429, statuses
    assert set(statuses) <= {401, 429}
    # A real address from the same client is blocked too: the header named a different IP every time.
    _assert_error(_login(client, host, email, password, **{"X-Forwarded-For": "10.200.0.1"}), 429)


def test_the_sign_in_form_counts_against_the_login_limit(client: httpx.Client, target) -> None:
    host, email, password = target
    for _ in range(5):
        page = client.get("/login", headers=host)
        csrf = page.cookies["csrftoken"]
        form = client.post(
            "/login",
            headers={**host, "Cookie": f"csrftoken={csrf}"},
            data={"email": email, "password": "wrong-pass-0000", "csrfmiddlewaretoken": csrf},
        )
        assert form.status_code in (401, 429), form.text

    _assert_error(_login(client, host, email, password), 429)


def test_twenty_concurrent_wrong_passwords_are_not_twenty_guesses(gateway: str, target) -> None:
    host, email, password = target
    barrier = threading.Barrier(20)
    statuses: list[int] = []
    lock = threading.Lock()

    def guess(number: int) -> None:
        with httpx.Client(base_url=gateway, timeout=30) as own:
            barrier.wait()
            response = _login(own, host, email, f"wrong-guess-{number:04d}")
        with lock:
            statuses.append(response.status_code)

    threads = [threading.Thread(target=guess, args=(number,)) for number in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    evaluated = statuses.count(401)
    assert 1 <= evaluated <= 5, statuses  # LOGIN_FAILURES_PER_ACCOUNT; the rest were refused unseen
    assert statuses.count(429) == 20 - evaluated, statuses
    with httpx.Client(base_url=gateway, timeout=30) as own:
        _assert_error(_login(own, host, email, password), 429)


# Item 12: logout ends the access token


def test_an_access_token_is_refused_after_logout(client: httpx.Client, target) -> None:
    host, email, password = target
    pair = _login(client, host, email, password).json()
    assert client.get("/api/auth/me", headers=_bearer(host, pair["access"])).status_code == 200
    assert client.get("/api/projects", headers=_bearer(host, pair["access"])).status_code == 200

    assert client.post("/api/auth/logout", headers=host, json={"refresh": pair["refresh"]}).status_code == 204

    _assert_error(client.get("/api/auth/me", headers=_bearer(host, pair["access"])), 401, "token_revoked")
    assert client.get("/api/projects", headers=_bearer(host, pair["access"])).status_code == 401
    assert client.get("/api/users", headers=_bearer(host, pair["access"])).status_code == 401
