#!/usr/bin/env python3
"""The merged OpenAPI document the gateway serves at /api/openapi.json, against its committed snapshot.

    python platform/openapi.py write    # regenerate docs/openapi.json (`make openapi`)
    python platform/openapi.py check    # fail with a diff when the API changed without it (`make openapi-check`)

Each service's document comes from `manage.py openapi` under its own settings (what its
`/openapi.json` answers, no server needed); gateway.openapi merges them exactly as the gateway
does. An API change is a deliberate commit: run `make openapi` and commit docs/openapi.json.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SNAPSHOT = ROOT / "docs" / "openapi.json"


def service_document(service: str) -> dict[str, Any]:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": f"config.settings.{service}"}
    result = subprocess.run(
        [sys.executable, "manage.py", "openapi"], cwd=ROOT, env=env, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise SystemExit(f"openapi: manage.py openapi failed for {service}:\n{result.stderr}")
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def merged_text() -> str:
    from gateway.config import SERVICES
    from gateway.openapi import openapi_merge

    with ThreadPoolExecutor(max_workers=2) as pool:
        documents = dict(zip(SERVICES, pool.map(service_document, SERVICES), strict=True))
    return json.dumps(openapi_merge(documents), indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["write", "check"])
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))  # gateway.openapi merges the documents, as the running gateway does
    current = merged_text()
    relative = SNAPSHOT.relative_to(ROOT)
    if args.command == "write":
        SNAPSHOT.write_text(current, encoding="utf-8")
        print(f"openapi: wrote {relative}")
        return 0
    saved = SNAPSHOT.read_text(encoding="utf-8") if SNAPSHOT.exists() else ""
    if saved == current:
        print(f"openapi: {relative} is up to date")
        return 0
    diff = difflib.unified_diff(
        saved.splitlines(keepends=True), current.splitlines(keepends=True), f"{relative} (committed)", "current API"
    )
    sys.stdout.writelines(diff)
    print(f"\nopenapi: the API differs from {relative}; if the change is meant, run `make openapi` and commit it")
    return 1


if __name__ == "__main__":
    sys.exit(main())
