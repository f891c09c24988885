"""Shared by the input helper's security tests: one demo login per run, and patience with the gateway's limits.

The gateway allows 10 logins and 5 signups a minute per client IP, and every test here comes
from 127.0.0.1: logging in once per run and waiting out a 429 keeps the suite from tripping them.
"""

import functools
import time
from collections.abc import Callable

import httpx

from tests.security.conftest import PORT_BASE, tenant_host

DEMO = tenant_host("demo")
APEX = f"localhost:{PORT_BASE}"
DEMO_OWNER = {"email": "owner@demo.test", "password": "demo-pass-123"}


def patiently(send: Callable[[], httpx.Response], *, attempts: int = 3) -> httpx.Response:
    """send(), again after the Retry-After of a 429 (at most 65 s each time)."""
    response = send()
    for _ in range(attempts - 1):
        if response.status_code != 429:
            break
        time.sleep(min(int(response.headers.get("retry-after", "5")), 65) + 1)
        response = send()
    return response


@functools.cache
def demo_owner_token(gateway: str) -> str:
    response = patiently(lambda: httpx.post(f"{gateway}/api/auth/token", json=DEMO_OWNER, headers={"Host": DEMO}))
    assert response.status_code == 200, response.text
    return response.json()["access"]
