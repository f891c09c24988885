"""The event backbone's transports: RabbitMQ, or Redis streams when no RabbitMQ runs (development).

`transport_connect()` picks one by the scheme of EVENTS_BROKER_URL; the relay, the consumer
runner and the developer tools use only the interface in `base.py`, so both transports run
the same code above it. Imports are deferred so that `base` stays importable on its own.
"""

from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from apps.events.transports.base import Transport

__all__ = ["Transport", "transport_connect", "transport_errors", "transport_kind"]

SCHEMES = {"amqp": "RabbitMQ", "amqps": "RabbitMQ", "redis": "Redis", "rediss": "Redis"}


def transport_kind(url: str | None = None) -> str:
    """ "RabbitMQ" or "Redis": which transport a broker URL selects."""
    scheme = urlsplit(url or settings.EVENTS_BROKER_URL).scheme.lower()
    if scheme not in SCHEMES:
        raise ImproperlyConfigured(
            f"EVENTS_BROKER_URL must be amqp://, amqps://, redis:// or rediss://, not {scheme}://"
        )
    return SCHEMES[scheme]


def transport_connect(*, url: str | None = None, name: str = "events") -> Transport:
    """A connected transport for one thread; raises one of `transport_errors()` when the broker is away."""
    url = url or settings.EVENTS_BROKER_URL
    if transport_kind(url) == "RabbitMQ":
        from apps.events.transports.rabbitmq import RabbitTransport

        return RabbitTransport(url=url, name=name)
    from apps.events.transports.redis_streams import RedisStreamsTransport

    return RedisStreamsTransport(url=url, name=name)


def transport_errors() -> tuple[type[BaseException], ...]:
    """What a lost or refused broker connection raises, on either transport: callers reconnect on these."""
    from apps.events.transports import rabbitmq, redis_streams

    return (*rabbitmq.ERRORS, *redis_streams.ERRORS)
