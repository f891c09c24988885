import asyncio
import io
import json
import logging

from gateway.logging import ACCESS_LOGGER, DeferredFlushHandler, JsonFormatter


def _handler() -> tuple[DeferredFlushHandler, io.StringIO]:
    stream = io.StringIO()
    handler = DeferredFlushHandler(stream)
    handler.setFormatter(JsonFormatter())
    return handler, stream


def _record(level: int, message: str) -> logging.LogRecord:
    return logging.LogRecord("gateway.access", level, "", 0, message, (), None)


async def test_lines_in_a_loop_are_written_together_soon_after() -> None:
    handler, stream = _handler()

    handler.emit(_record(logging.INFO, "first"))
    handler.emit(_record(logging.INFO, "second"))
    written_at_once = stream.getvalue()
    await asyncio.sleep(DeferredFlushHandler.FLUSH_INTERVAL * 3)

    assert written_at_once == ""
    assert [json.loads(line)["msg"] for line in stream.getvalue().splitlines()] == ["first", "second"]


async def test_a_warning_goes_out_at_once_with_what_waited() -> None:
    handler, stream = _handler()

    handler.emit(_record(logging.INFO, "before"))
    handler.emit(_record(logging.WARNING, "trouble"))

    assert [json.loads(line)["msg"] for line in stream.getvalue().splitlines()] == ["before", "trouble"]


def test_outside_a_loop_a_line_is_written_at_once() -> None:
    handler, stream = _handler()

    handler.emit(_record(logging.INFO, "now"))

    assert json.loads(stream.getvalue())["msg"] == "now"


def test_an_access_line_is_what_the_json_encoder_writes() -> None:
    formatter = JsonFormatter()
    for fields in (
        {"method": "GET", "path": "/s/abc", "status": 302, "duration_ms": 1.23, "service": None, "user": None},
        {"method": "WS", "path": '/x"y\\z\u00e9\u2028\n\t\x00', "status": 500, "duration_ms": 0.0, "tenant": "demo"},
        {"a": True, "b": False, "c": float("nan"), "d": float("-inf"), "e": [1, "x"], "f": 10**30, "g": -0.0},
    ):
        expected = {"ts": formatter._timestamp(1_700_000_000.5), "level": "info", "logger": ACCESS_LOGGER}
        expected |= {"msg": "request", **fields}
        assert formatter.access_line(1_700_000_000.5, fields) == json.dumps(expected)
