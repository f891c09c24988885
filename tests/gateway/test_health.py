from tests.gateway.conftest import Gateway
from tests.gateway.upstreams import closed_port_url


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
