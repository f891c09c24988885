"""Issue 8, proof: schemathesis against the merged OpenAPI at the gateway, every operation, in a throwaway tenant.

The document is the one the gateway serves (`/api/openapi.json`, gateway/openapi.py). Every
operation gets SCHEMATHESIS_EXAMPLES positive and as many negative cases (schemathesis's
Python API, v4), sent through the gateway on the throwaway tenant's host with its owner's
token. Two checks judge every answer: no 5xx (`not_a_server_error`) and, for a status the
document declares, a body that matches its schema (`response_schema_conformance`). Every
failure is collected (not shrunk: a run must stay within a few minutes on two cores) and the
test fails listing each distinct one with a curl command that replays it.

    SCHEMATHESIS_EXAMPLES=30 make test SUITE=security ARGS="-k schemathesis -s"
"""

import os
import re
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.mail import mailcatcher
from tests.security.conftest import PORT_BASE
from tests.security.input_helpers import APEX, patiently

EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "8"))
REQUESTS_PER_SECOND = 8
MIN_CASES = 500
PASSWORD = "fuzz-owner-pass-" + uuid.uuid4().hex[:8]
# Operations that would end the run's own session (its token is revoked on logout).
SKIPPED = {("POST", "/api/auth/logout")}


def _tenant_create(gateway: str, mail_dir: Path) -> tuple[str, str]:
    """(host, access token) of a tenant made for this run: signup, wait until active, log in."""
    slug = f"fuzz{uuid.uuid4().hex[:10]}"
    email = f"owner@{slug}.test"
    body = {"name": f"Fuzz {slug}", "slug": slug, "owner_email": email, "owner_password": PASSWORD}
    signup = patiently(lambda: httpx.post(f"{gateway}/api/tenants", json=body, headers={"Host": APEX}, timeout=30))
    assert signup.status_code == 201, signup.text
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = httpx.get(f"{gateway}/api/tenants/{slug}", headers={"Host": APEX}, timeout=10).json().get("status")
        if status == "active":
            break
        assert status != "failed", f"provisioning {slug} failed"
        time.sleep(0.5)
    else:
        pytest.fail(f"tenant {slug} did not become active in 60 s")
    host = f"{slug}.localhost:{PORT_BASE}"

    def login() -> httpx.Response:
        credentials = {"email": email, "password": PASSWORD}
        return patiently(lambda: httpx.post(f"{gateway}/api/auth/token", json=credentials, headers={"Host": host}))

    response = login()
    if response.status_code != 200:
        # A new account may have to prove its address first (issue 8, item 1): follow the mailed link.
        for link in _mailed_links(mail_dir, email):
            url = httpx.URL(link)
            target, link_host = f"{gateway}{url.raw_path.decode()}", f"{url.host}:{PORT_BASE}"
            for method in ("GET", "POST"):  # a confirmation page may want either
                httpx.request(method, target, headers={"Host": link_host}, follow_redirects=False, timeout=15)
        response = login()
    assert response.status_code == 200, f"the new owner cannot sign in: {response.status_code} {response.text[:300]}"
    return host, response.json()["access"]


def _mailed_links(mail_dir: Path, address: str) -> list[str]:
    """Every link in the mail the platform sent to address (waiting up to 10 s for one)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        mails = mailcatcher().mail_to(mail_dir, address)
        if mails:
            break
        time.sleep(0.5)
    return [link for mail in mails for link in re.findall(r"https?://[^\s\"'<>]+", mail.text)]


def _failure_key(operation: str, failure: BaseException) -> tuple[str, str]:
    title = getattr(failure, "title", type(failure).__name__)
    return operation, str(title)


def _tenant_fill(gateway: str, headers: dict[str, str]) -> dict[str, int]:
    """A project, its board, a column and a task in the run's tenant: path parameters that name real rows."""
    with httpx.Client(base_url=gateway, headers=headers, timeout=30) as client:
        project = client.post("/api/projects", json={"key": "FUZZ", "name": "Fuzzed"})
        assert project.status_code == 201, project.text
        board_id = project.json()["boards"][0]["id"]
        column_id = client.get(f"/api/boards/{board_id}").json()["columns"][0]["id"]
        task = client.post("/api/tasks", json={"board": board_id, "title": "Fuzzed task"})
        assert task.status_code == 201, task.text
    project_id, task_id = project.json()["id"], task.json()["id"]
    return {"project_id": project_id, "board_id": board_id, "column_id": column_id, "task_id": task_id}


def _fuzzer(operation, mode: GenerationMode, label: str, send, validate, path_parameters: dict | None = None):
    """A Hypothesis test that sends EXAMPLES cases of one operation and hands each answer to validate()."""

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode, path_parameters=path_parameters))
    def run(case) -> None:
        # Nothing raises out of here: Hypothesis would re-run the case and call a transient error "flaky".
        try:
            response = send(case)
        except (requests.exceptions.InvalidURL, requests.exceptions.InvalidHeader, UnicodeError) as exc:
            validate(case, None, label, unsent=exc)  # the client refused to send it: nothing reached the API
            return
        except requests.RequestException as exc:
            validate(case, None, label, transport_error=exc)
            return
        validate(case, response, label)

    return run


def test_schemathesis_finds_no_server_error_and_no_schema_violation(stack, mail_dir) -> None:
    gateway = stack.gateway
    document = httpx.get(f"{gateway}/api/openapi.json", headers={"Host": APEX}, timeout=30).json()
    assert not document["info"]["x-missing-services"], document["info"].get("x-missing-reasons")
    host, token = _tenant_create(gateway, mail_dir)
    schema = schemathesis.openapi.from_dict(document)
    session = requests.Session()
    headers = {"Host": host, "Authorization": f"Bearer {token}"}

    last_sent = [0.0]

    def send(case):
        # The gateway allows 600 requests a minute per client IP: stay under it rather than fuzz its 429.
        wait = last_sent[0] + 1 / REQUESTS_PER_SECOND - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        last_sent[0] = time.monotonic()
        response = case.call(base_url=gateway, session=session, headers=headers, timeout=30)
        if response.status_code == 429 and case.path not in ("/api/tenants", "/api/auth/token"):
            retry_after = response.headers.get("retry-after") or ["5"]  # schemathesis: a list per header
            time.sleep(min(int(retry_after[0] if isinstance(retry_after, list) else retry_after), 65) + 1)
            response = case.call(base_url=gateway, session=session, headers=headers, timeout=30)
        return response

    not_sent: Counter[str] = Counter()

    def validate(case, response, label: str, *, transport_error=None, unsent=None) -> None:
        if unsent is not None:
            not_sent[type(unsent).__name__] += 1
            return
        if transport_error is not None:
            detail = f"{transport_error}\n    {case.as_curl_command(headers=headers)}"
            failures.setdefault((label, f"transport: {type(transport_error).__name__}"), detail)
            return
        cases[label] += 1
        statuses[response.status_code] += 1
        try:
            case.validate_response(response, checks=[not_a_server_error, response_schema_conformance], headers=headers)
        except FailureGroup as group:
            for failure in group.exceptions:
                key = _failure_key(label, failure)
                failures.setdefault(key, f"{failure}\n    {case.as_curl_command(headers=headers)}")
        except Exception as exc:  # noqa: BLE001 - a check that could not run is reported, not retried
            failures.setdefault((label, f"check raised {type(exc).__name__}"), str(exc)[:1000])

    cases: Counter[str] = Counter()
    statuses: Counter[int] = Counter()
    failures: dict[tuple[str, str], str] = {}
    real_ids = _tenant_fill(gateway, headers)
    # Deletes last, so that what they remove was there for every other operation.
    operations = sorted((result.ok() for result in schema.get_all_operations()), key=lambda op: op.method == "delete")
    started = time.monotonic()
    for operation in operations:
        label = f"{operation.method.upper()} {operation.path}"
        if (operation.method.upper(), operation.path) in SKIPPED:
            continue
        names = {parameter.name for parameter in operation.path_parameters}
        passes: list[tuple[GenerationMode, dict | None]] = [
            (GenerationMode.POSITIVE, None),
            (GenerationMode.NEGATIVE, None),
        ]
        if names and names <= set(real_ids):
            # Random ids mostly meet a 404; real ones take the fuzzed body and query all the way in.
            passes.append((GenerationMode.POSITIVE, {name: real_ids[name] for name in names}))
        for mode, path_parameters in passes:
            try:
                _fuzzer(operation, mode, label, send, validate, path_parameters)()
            except Unsatisfiable:
                continue  # nothing to negate (no parameters, no body): the positive pass covered it
            except Exception as exc:  # noqa: BLE001 - a transport error, say: reported like a failed check
                failures.setdefault((label, f"{mode.value}: {type(exc).__name__}"), str(exc)[:1000])
    elapsed = time.monotonic() - started

    total = sum(cases.values())
    print(f"\nschemathesis: {total} cases over {len(cases)} operations in {elapsed:.0f} s; statuses {dict(statuses)}")
    if not_sent:
        print(f"schemathesis: cases the HTTP client refused to send: {dict(not_sent)}")
    # Signup and login keep their own, tighter limits: their 429s are answers, but not cases that reached a service.
    reached = total - statuses[429]
    assert reached >= MIN_CASES, f"only {reached} cases reached a service; raise SCHEMATHESIS_EXAMPLES"
    report = "\n\n".join(f"{operation}: {title}\n{detail}" for (operation, title), detail in sorted(failures.items()))
    assert not failures, f"{len(failures)} distinct failures:\n{report}"
