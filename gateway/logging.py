"""Structured logs: one JSON object per line, one access line per request."""

import asyncio
import json
import logging
import math
import sys
import time
from datetime import UTC, datetime
from json.encoder import encode_basestring_ascii

ACCESS_LOGGER = "gateway.access"


# One encoder for every line: json.dumps(..., default=str) builds a new JSONEncoder per call.
_ENCODER = json.JSONEncoder(default=str)


def _json_scalar(value: object) -> str:
    """`value` as the shared encoder writes it (ensure_ascii), quicker for str, int, float, None."""
    kind = type(value)
    if kind is str:
        return encode_basestring_ascii(value)  # type: ignore[arg-type]
    if kind is int or (kind is float and math.isfinite(value)):  # type: ignore[arg-type]
        return repr(value)
    if value is None:
        return "null"
    return _ENCODER.encode(value)


class JsonFormatter(logging.Formatter):
    _second: tuple[int, str] = (-1, "")

    def _timestamp(self, created: float) -> str:
        """ISO 8601 in UTC to the millisecond, as `isoformat(timespec="milliseconds")` writes it,
        with the part up to the second formatted once a second."""
        second = int(created)
        if second != self._second[0]:
            self._second = (second, datetime.fromtimestamp(second, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S"))
        return f"{self._second[1]}.{int((created - second) * 1000):03d}+00:00"

    def access_line(self, created: float, fields: dict[str, object]) -> str:
        """What `format` writes for an access record, made without one (`access_log`), and
        without the JSON encoder's walk of a dict: its fields are a handful of strings and
        numbers, each written by the encoder's own C escaping (a third of the encoder's cost)."""
        parts = [
            f'{{"ts": "{self._timestamp(created)}", "level": "info", "logger": "{ACCESS_LOGGER}", "msg": "request"'
        ]
        for name, value in fields.items():
            parts.append(f", {_json_scalar(name)}: {_json_scalar(value)}")
        parts.append("}")
        return "".join(parts)

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "ts": self._timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        line.update(getattr(record, "fields", {}))
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return _ENCODER.encode(line)


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
        self.line_add(line, urgent=record.levelno >= logging.WARNING)

    def line_add(self, line: str, *, urgent: bool = False) -> None:
        self._pending.append(line)
        if urgent:
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
    # No line shows the thread or process: each record skips looking them up (a sixth of its cost).
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    if not any(isinstance(handler.formatter, JsonFormatter) for handler in logger.handlers):
        handler = DeferredFlushHandler(sys.stdout)
        handler.setFormatter(JsonFormatter())
        logger.addHandler(handler)
    logger.propagate = True


_access = logging.getLogger(ACCESS_LOGGER)
_gateway = logging.getLogger("gateway")
_root = logging.getLogger()


def _sole_handler() -> DeferredFlushHandler | None:
    """The gateway's own handler, when an access record would reach it and nothing else: no
    other handler on the way up, no filter. Otherwise (a test's handler, say) None."""
    if _access.handlers or _access.filters or _gateway.filters or not _access.propagate:
        return None
    handlers = _gateway.handlers
    if len(handlers) != 1 or (_gateway.propagate and _root.handlers):
        return None
    handler = handlers[0]
    if (
        type(handler) is not DeferredFlushHandler
        or handler.filters
        or handler.level > logging.INFO
        or not isinstance(handler.formatter, JsonFormatter)
    ):
        return None
    return handler


def access_log(**fields: object) -> None:
    # One line per request. With the gateway's own handler alone (how it runs), the line is made
    # and queued directly: a LogRecord and the handler chain were half of the cost of a line.
    # Otherwise a record, built without Logger.info's search of the call stack for the caller's
    # file and line (a fifth of the cost of logging, and never printed).
    if not _access.isEnabledFor(logging.INFO):
        return
    handler = _sole_handler()
    if handler is not None:
        assert isinstance(handler.formatter, JsonFormatter)
        try:
            line = handler.formatter.access_line(time.time(), fields)
        except Exception:  # noqa: BLE001 - logging must never raise into the request
            return
        handler.line_add(line + handler.terminator)
        return
    record = _access.makeRecord(ACCESS_LOGGER, logging.INFO, "", 0, "request", (), None, extra={"fields": fields})
    _access.handle(record)
