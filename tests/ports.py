import socket


def free_port() -> int:
    """A TCP port nothing listens on right now, for a server a test starts."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
