"""Structured logs: one JSON object per line, one access line per request."""

import asyncio
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


class DeferredFlushHandler(logging.StreamHandler):
    """Collects lines and writes them together at most every `FLUSH_INTERVAL` seconds inside an
    event loop. A write per access line was a syscall per request (the launcher runs every
    process with PYTHONUNBUFFERED=1, so stdout writes through), a sixth of the gateway's CPU
    at load (docs/benchmarks.md). Warnings and errors, and lines outside a loop, go out at once
    (with whatever is waiting, in order)."""

    FLUSH_INTERVAL = 0.05

    def __init__(self, stream: object = None) -> None:
        super().__init__(stream)
        self._pending: list[str] = []
        self._flush_scheduled = False

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + self.terminator
        except Exception:  # noqa: BLE001 - logging must never raise into the request
            self.handleError(record)
            return
        self._pending.append(line)
        if record.levelno >= logging.WARNING:
            self._write_pending()
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._write_pending()
            return
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_later(self.FLUSH_INTERVAL, self._write_pending)

    def _write_pending(self) -> None:
        self._flush_scheduled = False
        if not self._pending:
            return
        text, self._pending = "".join(self._pending), []
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):  # a closed stdout: nothing to be done about it here
            pass

    def close(self) -> None:
        self._write_pending()
        super().close()


def logging_configure(*, level: str) -> None:
    """Route the gateway's loggers through one JSON handler on stdout (idempotent)."""
    logger = logging.getLogger("gateway")
    logger.setLevel(level.upper())
    if not any(isinstance(handler.formatter, JsonFormatter) for handler in logger.handlers):
        handler = DeferredFlushHandler(sys.stdout)
        handler.setFormatter(JsonFormatter())
        logger.addHandler(handler)
    logger.propagate = True


_access = logging.getLogger(ACCESS_LOGGER)


def access_log(**fields: object) -> None:
    # One line per request: built directly, without Logger.info's search of the call stack
    # for the caller's file and line (a fifth of the cost of logging, and never printed).
    if _access.isEnabledFor(logging.INFO):
        _access.handle(
            _access.makeRecord(ACCESS_LOGGER, logging.INFO, "", 0, "request", (), None, extra={"fields": fields})
        )
