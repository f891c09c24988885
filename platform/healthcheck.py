#!/usr/bin/env python3
"""A container healthcheck with only the standard library (the image has no curl).

python platform/healthcheck.py http http://127.0.0.1:8001/readyz   # 200 or unhealthy
python platform/healthcheck.py tcp rabbitmq:5672 postgres:5432     # every address answers
"""

import socket
import sys
import urllib.error
import urllib.request


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - a fixed local URL
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def tcp_ok(address: str) -> bool:
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=5):
            return True
    except (OSError, ValueError):
        return False


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] not in ("http", "tcp"):
        print(__doc__, file=sys.stderr)
        return 2
    check = http_ok if argv[0] == "http" else tcp_ok
    failing = [target for target in argv[1:] if not check(target)]
    if failing:
        print(f"unhealthy: {', '.join(failing)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
