"""The edge redirect (gateway/shortlinks.py) against the machine's Redis and PostgreSQL: a cached
short link is answered by the gateway with its visit committed to the shortener's inbox first;
everything else goes to the shortener (here the echoing stand-in of tests/gateway/upstreams.py,
which only shows what the gateway chose to forward and with which headers).

The inbox table is the shortener's own migration (`manage.py migrate` under its settings) in a
database of this run; the redirect cache lives in Redis DB 5 (the edge's, docs: /work/notes).
"""

import concurrent.futures
import hashlib
import json
import logging
import os
import random
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psycopg
import pytest
import redis

from gateway import visitors
from gateway.auth import path_is_public
from gateway.logging import JsonFormatter
from gateway.shortlinks import entry_servable
from tests.gateway.conftest import ACME_ID, Gateway, Stack
from tests.helpers import POSTGRES_URL, redis_url_with_db, wait_until

ROOT = Path(__file__).resolve().parents[2]
EDGE_REDIS_URL = redis_url_with_db(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"), 5)
INBOX_DB = f"edge_test_shortener{os.environ.get('TEST_DB_SUFFIX', '')}"
INBOX_URL = f"{POSTGRES_URL}/{INBOX_DB}"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
# The visitor's address, as a trusted proxy in front of the gateway reports it: one that appears
# nowhere else (not the database's, not the test servers'), so finding it anywhere is a leak.
VISITOR_IP = "81.2.69.142"  # GB in every offline database
PROXY = {"X-Forwarded-For": VISITOR_IP}
COLUMNS = ("code", "tenant_id", "referrer", "user_agent", "visitor", "country", "bot")
_ROWS = (
    "SELECT code, tenant_id, referrer, user_agent, visitor, country, bot, accessed_at"
    " FROM shortener_visitinbox WHERE code = %s ORDER BY id"
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def inbox_db() -> Iterator[str]:
    with psycopg.connect(f"{POSTGRES_URL}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{INBOX_DB}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{INBOX_DB}"')
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.shortener",
        "DATABASE_URL": INBOX_URL,
        "DB_POOL_MAX_SIZE": "0",
    }
    subprocess.run(
        [sys.executable, "-W", "ignore", "manage.py", "migrate", "--no-input", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=120,
    )
    try:
        yield INBOX_URL
    finally:
        with psycopg.connect(f"{POSTGRES_URL}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{INBOX_DB}" WITH (FORCE)')


@pytest.fixture
def cache() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(EDGE_REDIS_URL)
    written: list[str] = []
    original_set = client.set

    def remembered_set(name: str, *args: object, **kwargs: object) -> object:
        written.append(name)
        return original_set(name, *args, **kwargs)

    client.set = remembered_set  # type: ignore[method-assign]
    yield client
    if written:
        client.delete(*written)
    client.close()


@pytest.fixture
def edge(stack: Stack, inbox_db: str) -> Iterator[Gateway]:
    # The visitor reaches the gateway through a proxy it trusts (the test client, on 127.0.0.1).
    with stack.gateway(redis_url=EDGE_REDIS_URL, visits_database_url=inbox_db, trusted_proxies="127.0.0.1") as running:
        yield running


@pytest.fixture
def log_lines() -> Iterator[list[str]]:
    """Every log line the process writes while the test runs, as the gateway formats them."""
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = Collect(level=logging.DEBUG)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    yield lines
    root.removeHandler(handler)


def new_code() -> str:
    return "t" + uuid.uuid4().hex[:12]


def cache_link(client: redis.Redis, code: str, **entry: object) -> None:
    value = {"version": 3, "target": "https://example.com/landing?from=share", "tenant_id": ACME_ID, "expires_at": None}
    value.update(entry)
    client.set(f"shortlink:{code}", json.dumps(value), ex=600)


def inbox_rows(code: str) -> list[dict]:
    with psycopg.connect(INBOX_URL) as connection:
        cursor = connection.execute(_ROWS, [code])
        return [dict(zip((*COLUMNS, "accessed_at"), row, strict=True)) for row in cursor.fetchall()]


def today_salt(client: redis.Redis) -> str:
    salt = client.get(f"visitor-salt:{datetime.now(UTC):%Y-%m-%d}")
    assert salt is not None and len(salt) == 64
    return salt.decode()


def forwarded_to_shortener(response: httpx.Response) -> bool:
    return response.status_code == 200 and response.headers.get("x-served-by") == "shortener"


# The cache entry ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "servable"),
    [
        ({"version": 1, "target": "https://example.com/", "tenant_id": "t1", "expires_at": None}, True),
        ({"version": 1, "target": "http://example.com/a?b=c#d", "tenant_id": "t1", "expires_at": 4e9}, True),
        ({"version": 2, "gone": True}, False),
        ({"version": 1, "target": "https://example.com/", "tenant_id": "t1", "expires_at": 1.0}, False),
        ({"version": 1, "target": "https://example.com/", "tenant_id": "t1", "expires_at": "soon"}, False),
        ({"version": 1, "target": "https://example.com/", "tenant_id": "t1", "expires_at": True}, False),
        ({"version": 1, "target": "javascript:alert(1)", "tenant_id": "t1"}, False),
        ({"version": 1, "target": "//evil.example/", "tenant_id": "t1"}, False),
        ({"version": 1, "target": "https://example.com/\r\nSet-Cookie: a=b", "tenant_id": "t1"}, False),
        ({"version": 1, "target": "https://example.com/\\evil", "tenant_id": "t1"}, False),
        ({"version": 1, "target": "https://exämple.com/", "tenant_id": "t1"}, False),
        ({"version": 1, "target": "", "tenant_id": "t1"}, False),
        ({"version": 1, "target": "https://example.com/"}, False),
        ([1, 2], False),
    ],
)
def test_only_an_active_plain_http_link_is_servable(entry: object, servable: bool) -> None:
    assert (entry_servable(json.dumps(entry).encode(), now=time.time()) is not None) is servable


def test_an_unreadable_entry_is_not_servable() -> None:
    assert entry_servable(b"{not json", now=time.time()) is None
    assert entry_servable(None, now=time.time()) is None


def test_an_entry_read_before_expires_when_its_time_comes() -> None:
    raw = json.dumps({"version": 1, "target": "https://example.com/", "tenant_id": "t1", "expires_at": 1000.0}).encode()

    assert entry_servable(raw, now=999.0) is not None
    assert entry_servable(raw, now=1000.0) is None


def test_the_countrys_shortcut_answers_as_geoip2fasts_own_lookup() -> None:
    generator = random.Random(11)
    addresses = [".".join(str(generator.randrange(256)) for _ in range(4)) for _ in range(3000)]
    addresses += [":".join(f"{generator.randrange(65536):x}" for _ in range(8)) for _ in range(1000)]
    addresses += [VISITOR_IP, "8.8.8.8", "2001:4860:4860::8888", "::1", "10.1.2.3", "127.0.0.1", "unknown", ""]
    geo = visitors._geo()

    def public(ip: str) -> str | None:
        code = geo.lookup(ip).country_code
        return code if len(code) == 2 and code.isalpha() and code.isupper() else None

    assert visitors._GEO_INTERNALS
    assert [visitors.country_of(ip) for ip in addresses] == [public(ip) for ip in addresses]
    assert visitors.country_of(VISITOR_IP) == "GB" and visitors.country_of("10.1.2.3") is None


def test_the_shared_view_is_public() -> None:
    assert path_is_public("GET", "/shared/Ab12cd34ef")
    assert path_is_public("GET", "/shared")
    assert path_is_public("GET", "/ws/shared/Ab12cd34ef/")
    assert not path_is_public("GET", "/sharedx")
    assert not path_is_public("GET", "/ws/board/1/")


# Answered at the edge ---------------------------------------------------------------------------


def test_a_cached_link_is_answered_by_the_gateway_with_its_visit_committed(
    edge: Gateway, cache: redis.Redis, log_lines: list[str]
) -> None:
    code = new_code()
    cache_link(cache, code)
    referrer = "https://news.example/item?id=7"

    response = edge.get(
        f"/s/{code}", host="localhost:8000", token=None, headers={**PROXY, "User-Agent": BROWSER, "Referer": referrer}
    )
    rows = inbox_rows(code)  # read at once: the row was committed before the answer

    assert response.status_code == 302
    assert response.headers["location"] == "https://example.com/landing?from=share"
    assert response.headers["cache-control"] == "private, no-store"
    assert response.headers["referrer-policy"] == "same-origin"
    assert response.headers["x-robots-tag"] == "noindex"
    assert "x-served-by" not in response.headers
    assert response.content == b""
    expected_visitor = hashlib.sha256(f"{today_salt(cache)}|{VISITOR_IP}|{BROWSER}".encode()).hexdigest()
    assert [{column: row[column] for column in COLUMNS} for row in rows] == [
        {
            "code": code,
            "tenant_id": ACME_ID,
            "referrer": referrer,
            "user_agent": BROWSER,
            "visitor": expected_visitor,
            "country": "GB",
            "bot": False,
        }
    ]
    assert abs((datetime.now(UTC) - rows[0]["accessed_at"]).total_seconds()) < 30
    assert VISITOR_IP not in repr(rows)
    wait_until(lambda: any(f"/s/{code}" in line for line in log_lines))
    access = [json.loads(line) for line in log_lines if f"/s/{code}" in line]
    assert access and access[0]["status"] == 302 and access[0]["service"] == "edge"
    assert log_lines and not [line for line in log_lines if VISITOR_IP in line]


def test_the_raw_ip_is_in_no_redis_key(edge: Gateway, cache: redis.Redis) -> None:
    code = new_code()
    cache_link(cache, code)

    for path in (f"/s/{code}", f"/s/{new_code()}"):
        edge.get(path, host="localhost:8000", token=None, headers={**PROXY, "User-Agent": BROWSER})

    # The per-IP rate-limit windows exist, keyed by a pseudonym of the address.
    windows = [key.decode() for key in cache.scan_iter(f"{edge.settings.redis_key_prefix}:rl:ip:*")]
    assert len(windows) == 1
    written = [
        key
        for pattern in (f"{edge.settings.redis_key_prefix}*", "visitor-salt:*", f"shortlink:{code}")
        for key in cache.scan_iter(pattern)
    ]
    everything = [key.decode() + repr(cache.dump(key)) for key in written]
    assert not [entry for entry in everything if VISITOR_IP in entry]


def test_the_raw_ip_is_in_no_log_line_when_forwarded_either(
    edge: Gateway, cache: redis.Redis, log_lines: list[str]
) -> None:
    response = edge.get(f"/s/{new_code()}", host="localhost:8000", token=None, headers={**PROXY, "User-Agent": BROWSER})

    assert forwarded_to_shortener(response)
    wait_until(lambda: any('"status": 200' in line for line in log_lines))
    assert log_lines and not [line for line in log_lines if VISITOR_IP in line]


@pytest.mark.parametrize(
    "user_agent",
    [
        "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
        "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
        "WhatsApp/2.23.20.0 A",
        "Twitterbot/1.0",
        "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
        "http.rb/5.1.1 (Mastodon/4.2.1; +https://mastodon.social/)",
        "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)",
        "TelegramBot (like TwitterBot)",
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "",
    ],
)
def test_bots_and_previewers_are_redirected_and_recorded_as_bots(
    edge: Gateway, cache: redis.Redis, user_agent: str
) -> None:
    code = new_code()
    cache_link(cache, code)

    response = edge.get(f"/s/{code}", host="localhost:8000", token=None, headers={**PROXY, "User-Agent": user_agent})

    assert response.status_code == 302
    assert [(row["bot"], row["user_agent"]) for row in inbox_rows(code)] == [(True, user_agent or None)]


def test_a_tenant_host_is_answered_too_and_the_visit_keeps_the_links_tenant(edge: Gateway, cache: redis.Redis) -> None:
    code = new_code()
    cache_link(cache, code, tenant_id="another-tenant")

    response = edge.get(f"/s/{code}?utm_source=qr", host="acme.localhost:8000", token=None, headers=PROXY)

    assert response.status_code == 302
    assert [row["tenant_id"] for row in inbox_rows(code)] == ["another-tenant"]


def test_concurrent_visits_are_committed_together(edge: Gateway, cache: redis.Redis) -> None:
    code = new_code()
    cache_link(cache, code)

    def visit(n: int) -> int:
        agent = f"{BROWSER} visitor/{n}"
        return edge.get(f"/s/{code}", host="localhost:8000", token=None, headers={"User-Agent": agent}).status_code

    with concurrent.futures.ThreadPoolExecutor(max_workers=32) as pool:
        statuses = list(pool.map(visit, range(96)))
    rows = inbox_rows(code)

    assert statuses == [302] * 96
    assert len(rows) == 96 and len({row["visitor"] for row in rows}) == 96
    # accessed_at is the transaction's now(): one value per commit.
    assert len({row["accessed_at"] for row in rows}) < 96


# Forwarded to the shortener ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "stored",
    [
        None,  # not cached
        json.dumps({"version": 9, "gone": True}),
        json.dumps({"version": 4, "target": "https://example.com/", "tenant_id": ACME_ID, "expires_at": 1000.0}),
        "not json",
    ],
    ids=["missing", "tombstone", "expired", "unreadable"],
)
def test_anything_but_a_servable_entry_goes_to_the_shortener_with_the_visitor_facts(
    edge: Gateway, cache: redis.Redis, stored: str | None
) -> None:
    code = new_code()
    if stored is not None:
        cache.set(f"shortlink:{code}", stored, ex=600)

    response = edge.get(f"/s/{code}", host="localhost:8000", token=None, headers={**PROXY, "User-Agent": BROWSER})

    assert forwarded_to_shortener(response)
    forwarded = response.json()["headers"]
    assert (
        forwarded["x-visitor-id"] == hashlib.sha256(f"{today_salt(cache)}|{VISITOR_IP}|{BROWSER}".encode()).hexdigest()
    )
    assert forwarded["x-visitor-country"] == "GB"
    assert forwarded["x-visitor-bot"] == "0"
    assert inbox_rows(code) == []


@pytest.mark.parametrize("method", ["HEAD", "POST"])
def test_other_methods_go_to_the_shortener(edge: Gateway, cache: redis.Redis, method: str) -> None:
    code = new_code()
    cache_link(cache, code)

    response = edge.request(
        method, f"/s/{code}", host="localhost:8000", token=None, data={"password": "x"} if method == "POST" else None
    )

    assert response.status_code == 200 and response.headers["x-served-by"] == "shortener"
    assert inbox_rows(code) == []


def test_a_malformed_code_goes_to_the_shortener(edge: Gateway, cache: redis.Redis) -> None:
    code = "x" * 65
    cache_link(cache, code)

    assert forwarded_to_shortener(edge.get(f"/s/{code}", host="localhost:8000", token=None))
    assert inbox_rows(code) == []


def test_a_clients_visitor_headers_are_dropped(edge: Gateway, cache: redis.Redis) -> None:
    forged = {"X-Visitor-Id": "forged", "X-Visitor-Country": "ZZ", "X-Visitor-Bot": "0"}
    response = edge.get(
        f"/s/{new_code()}",
        host="localhost:8000",
        token=None,
        headers={**PROXY, **forged, "User-Agent": "Twitterbot/1.0"},
    )

    header_list = response.json()["header_list"]
    sent = {
        name: [value for n, value in header_list if n == name]
        for name in ("x-visitor-id", "x-visitor-country", "x-visitor-bot")
    }
    assert sent["x-visitor-bot"] == ["1"]
    assert sent["x-visitor-country"] == ["GB"]
    assert len(sent["x-visitor-id"]) == 1 and sent["x-visitor-id"] != ["forged"]


def test_visitor_headers_are_dropped_on_other_paths_too(edge: Gateway) -> None:
    response = edge.get("/api/projects", headers={"X-Visitor-Id": "forged", "X-Visitor-Bot": "0"})

    assert "x-visitor-id" not in response.json()["headers"]
    assert "x-visitor-bot" not in response.json()["headers"]


def test_a_link_edge_redirects_off_goes_to_the_shortener(stack: Stack, inbox_db: str, cache: redis.Redis) -> None:
    code = new_code()
    cache_link(cache, code)
    with stack.gateway(redis_url=EDGE_REDIS_URL, visits_database_url=inbox_db, edge_redirects_enabled=False) as off:
        assert forwarded_to_shortener(off.get(f"/s/{code}", host="localhost:8000", token=None))
    assert inbox_rows(code) == []


# Failures: never a 500, never a 302 without its row ----------------------------------------------


def test_redis_down_forwards_to_the_shortener(stack: Stack, inbox_db: str) -> None:
    down = f"redis://127.0.0.1:{_free_port()}/5"
    with stack.gateway(redis_url=down, visits_database_url=inbox_db, trusted_proxies="127.0.0.1") as gateway:
        response = gateway.get(
            f"/s/{new_code()}", host="localhost:8000", token=None, headers={**PROXY, "User-Agent": BROWSER}
        )

    assert forwarded_to_shortener(response)
    forwarded = response.json()["headers"]
    assert len(forwarded["x-visitor-id"]) == 64  # hashed with this process's own salt meanwhile
    assert forwarded["x-visitor-country"] == "GB"


def test_postgres_down_forwards_to_the_shortener(stack: Stack, cache: redis.Redis) -> None:
    code = new_code()
    cache_link(cache, code)
    down = f"postgres://postgres@127.0.0.1:{_free_port()}/nothing"
    with stack.gateway(redis_url=EDGE_REDIS_URL, visits_database_url=down) as gateway:
        statuses = [gateway.get(f"/s/{code}", host="localhost:8000", token=None) for _ in range(3)]

    assert all(forwarded_to_shortener(response) for response in statuses)
    assert statuses[0].json()["headers"]["x-visitor-bot"] == "1"  # httpx's user agent


def test_the_writer_reconnects_after_its_connection_is_killed(edge: Gateway, cache: redis.Redis) -> None:
    code = new_code()
    cache_link(cache, code)
    assert edge.get(f"/s/{code}", host="localhost:8000", token=None).status_code == 302

    with psycopg.connect(INBOX_URL, autocommit=True) as admin:
        killed = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE application_name = 'gateway-visits' AND datname = %s",
            [INBOX_DB],
        ).fetchone()
    assert killed is not None and killed[0] >= 1

    answers = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        response = edge.get(f"/s/{code}", host="localhost:8000", token=None)
        answers.append(response.status_code)
        if response.status_code == 302 and len(answers) > 1:
            break
        time.sleep(0.2)

    assert set(answers) <= {302, 200}  # 200: forwarded to the shortener while reconnecting; never a 500
    assert answers[-1] == 302
    assert len(inbox_rows(code)) == 1 + answers.count(302)
