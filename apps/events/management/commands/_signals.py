"""Graceful shutdown for the long-running event commands."""

import signal
import threading


def stop_on_signals() -> threading.Event:
    """An event set by SIGINT/SIGTERM: the loop finishes what it holds, then returns."""
    stop = threading.Event()

    def request_stop(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    return stop
