from concurrent.futures import ThreadPoolExecutor

from tests.gateway.conftest import Gateway
from tests.helpers import closed_port_url


def test_healthz_is_ok_when_every_service_is_ready(gateway: Gateway) -> None:
    response = gateway.get("/healthz", host="localhost:8000", token=None)

    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "services": dict.fromkeys(("identity", "tenancy", "projects", "shortener", "analytics"), "ok"),
    }


def test_healthz_names_a_down_and_an_unready_service(make_gateway, stack) -> None:
    gateway = make_gateway(shortener_url=closed_port_url())
    stack.states["analytics"].ready = False

    response = gateway.get("/healthz", host="localhost:8000", token=None)

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded"
    assert body["failing"] == ["analytics", "shortener"]
    assert body["services"]["identity"] == "ok"
    assert body["services"]["shortener"] == "unreachable: connection refused"
    assert body["services"]["analytics"] == "not ready: status 503 (database failing)"


def test_healthz_works_on_a_tenant_host_without_a_token(gateway: Gateway) -> None:
    assert gateway.get("/healthz", token=None).status_code == 200


def test_readyz_checks_the_gateways_redis(gateway: Gateway) -> None:
    response = gateway.get("/readyz", host="localhost:8000", token=None)

    assert response.status_code == 200
    assert response.json()["checks"] == {"redis": "ok"}


def test_readyz_fails_when_redis_is_unreachable(make_gateway) -> None:
    gateway = make_gateway(redis_url=closed_port_url().replace("http://", "redis://"))

    response = gateway.get("/readyz", host="localhost:8000", token=None)

    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"
    assert response.json()["checks"]["redis"].startswith("unreachable")


def test_concurrent_healthz_calls_share_one_check_of_each_service(make_gateway, stack) -> None:
    # /healthz is public: asked afresh, each call would cost a request to every service.
    gateway = make_gateway(health_cache_seconds=30.0)
    before = stack.states["identity"].readiness_checks
    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(lambda _: gateway.get("/healthz", host="localhost:8000", token=None), range(60)))
    assert {response.status_code for response in answers} == {200}
    assert stack.states["identity"].readiness_checks - before == 1


def test_healthz_sees_a_change_once_its_answer_is_older_than_the_cache(make_gateway, stack) -> None:
    gateway = make_gateway(health_cache_seconds=0.0)
    assert gateway.get("/healthz", host="localhost:8000", token=None).status_code == 200
    stack.states["tenancy"].ready = False
    assert gateway.get("/healthz", host="localhost:8000", token=None).json()["failing"] == ["tenancy"]
