"""Structured logs: one JSON object per line, one access line per request."""

import json
import logging
import sys
from datetime import UTC, datetime

ACCESS_LOGGER = "gateway.access"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        line.update(getattr(record, "fields", {}))
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def logging_configure(*, level: str) -> None:
    """Route the gateway's loggers through one JSON handler on stdout (idempotent)."""
    logger = logging.getLogger("gateway")
    logger.setLevel(level.upper())
    if not any(isinstance(handler.formatter, JsonFormatter) for handler in logger.handlers):
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(JsonFormatter())
        logger.addHandler(handler)
    logger.propagate = True


def access_log(**fields: object) -> None:
    logging.getLogger(ACCESS_LOGGER).info("request", extra={"fields": fields})
