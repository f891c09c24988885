"""The small helpers every suite shares: backing servers' URLs, waiting, servers and ports, and
access tokens.

Nothing here imports Django, so the gateway and platform suites (which run without it) use it too.
"""

import os
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import jwt
import uvicorn
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

# Backing servers, as platform/devstack.py exports them to every suite (the same variables and
# defaults as config/settings/base.py).

POSTGRES_URL = os.environ.get("POSTGRES_URL", "postgres://postgres@127.0.0.1:5432").rstrip("/")
BROKER_URL = os.environ.get("BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
# Tests that write Redis keys do it in a database of their own on the stack's Redis server (a
# stack uses 0 and the ones after it), each under a prefix of its own.
TEST_REDIS_DB = 11


def redis_url_with_db(url: str, db: int) -> str:
    """The same Redis server, another database number."""
    return urlsplit(url)._replace(path=f"/{db}").geturl()


REDIS_URL = redis_url_with_db(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"), TEST_REDIS_DB)


def host_port(url: str, default_port: int) -> tuple[str, int]:
    """A server URL's (host, port), for a TCP relay in front of it."""
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or default_port


# Waiting


def wait_until(predicate: Callable[[], object], *, timeout: float = 5.0, interval: float = 0.01) -> bool:
    """Polls `predicate` until it is true or `timeout` seconds pass; the last answer decides."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


# Ports and servers


def free_port() -> int:
    """A TCP port nothing listens on right now, for a server a test starts."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def free_port_run(count: int, *, attempts: int = 50) -> int:
    """The first of `count` consecutive free ports, for a stack that takes a port base."""
    for _ in range(attempts):
        base = free_port()
        if base + count > 65535:
            continue
        sockets = []
        try:
            for port in range(base, base + count):
                sock = socket.socket()
                sockets.append(sock)
                sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
        return base
    raise RuntimeError(f"no {count} consecutive free ports after {attempts} tries")


def closed_port_url() -> str:
    """A URL nothing listens on: connections to it are refused."""
    return f"http://127.0.0.1:{free_port()}"


@contextmanager
def serve(app: object, *, proxy_headers: bool = True, lifespan: str = "auto", **options: object) -> Iterator[str]:
    """Run the ASGI `app` under uvicorn on a free port in a thread of this process; yield its base URL."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="warning", lifespan=lifespan, proxy_headers=proxy_headers, **options
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    if not wait_until(lambda: server.started or not thread.is_alive(), timeout=10) or not server.started:
        raise RuntimeError("test server did not start")
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextmanager
def server_process(
    argv: list[str], *, ready: Callable[[], bool], timeout: float = 30, **popen: object
) -> Iterator[subprocess.Popen]:
    """A server in a subprocess, yielded once `ready()` answers true; terminated on the way out."""
    popen.setdefault("stdout", subprocess.DEVNULL)
    popen.setdefault("stderr", subprocess.DEVNULL)
    process = subprocess.Popen(argv, **popen)

    def up() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"{argv[0]} exited with {process.returncode} before it was ready")
        return ready()

    try:
        if not wait_until(up, timeout=timeout, interval=0.1):
            raise RuntimeError(f"{argv[0]} was not ready after {timeout} s")
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


# Access tokens: what identity signs (CONTRACT.md), with keys a test owns.

ISSUER = "kanban-identity"
AUDIENCE = "kanban-platform"


def access_claims(
    tenant_id: str | None,
    *,
    user_id: str = "user-1",
    roles: Iterable[str] = ("member",),
    permissions: Iterable[str] = (),
    lifetime: int = 900,
    **overrides: object,
) -> dict:
    """An access token's claims for `tenant_id`, valid for `lifetime` seconds; `overrides` replace any claim."""
    now = int(time.time())
    claims = {
        "sub": user_id,
        "tenantId": tenant_id,
        "roles": list(roles),
        "permissions": sorted(permissions),
        "iat": now,
        "exp": now + lifetime,
        "iss": ISSUER,
        "aud": AUDIENCE,
        "jti": uuid.uuid4().hex,
    }
    claims.update(overrides)
    return claims


class TestSigningKey:
    """A signing key as identity keeps one: a kid, a private key, and its public JWK."""

    __test__ = False  # not a test class, whatever pytest thinks of the name

    def __init__(self, kid: str, *, kind: str = "RSA") -> None:
        self.kid = kid
        self.kind = kind
        if kind == "RSA":
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            self.algorithm = "RS256"
            jwk = jwt.algorithms.RSAAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        else:
            self.private = ed25519.Ed25519PrivateKey.generate()
            self.algorithm = "EdDSA"
            jwk = jwt.algorithms.OKPAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        self.public_jwk = {**jwk, "kid": kid, "use": "sig"}

    def public_key(self) -> object:
        return self.private.public_key()

    def sign(self, claims: dict, *, headers: dict | None = None, algorithm: str | None = None) -> str:
        return token_sign(claims, self.private, kid=self.kid, algorithm=algorithm or self.algorithm, headers=headers)


def token_sign(
    claims: dict, private_key: object, *, kid: str, algorithm: str = "RS256", headers: dict | None = None
) -> str:
    """`claims` as a JWT signed by `private_key`, naming `kid` (plus any other `headers`)."""
    return jwt.encode(claims, private_key, algorithm=algorithm, headers={"kid": kid, **(headers or {})})
