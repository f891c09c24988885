import pytest
from django.test import Client


@pytest.mark.django_db
def test_healthz_answers_without_touching_backing_servers(client: Client) -> None:
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "service": "identity"}


@pytest.mark.django_db
def test_readyz_reports_each_backing_server(client: Client) -> None:
    response = client.get("/readyz")

    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "cache": "ok", "broker": "ok"}


@pytest.mark.django_db
def test_readyz_names_an_unreachable_broker(client: Client, settings) -> None:
    settings.BROKER_URL = "amqp://guest:guest@127.0.0.1:1//"
    settings.READINESS_TIMEOUT = 0.5

    response = client.get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["broker"] != "ok"
    assert body["checks"]["database"] == "ok"


def test_request_id_is_kept_from_the_gateway(client: Client) -> None:
    response = client.get("/healthz", HTTP_X_REQUEST_ID="abc-123")

    assert response["X-Request-ID"] == "abc-123"


def test_malformed_request_id_is_replaced(client: Client) -> None:
    response = client.get("/healthz", HTTP_X_REQUEST_ID="bad id\nwith newline")

    assert response["X-Request-ID"] != "bad id\nwith newline"
    assert len(response["X-Request-ID"]) == 32
