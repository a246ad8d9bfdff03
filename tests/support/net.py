"""Sockets for tests: everything listens on the loopback, on ports the kernel picks."""

from __future__ import annotations

import socket

HOST = "127.0.0.1"


def free_port() -> int:
    """A port nothing listens on (the kernel just handed it out and it was closed again).

    For servers that cannot be told to listen on port 0 (Postfix, nginx, a relay that is
    meant to be down): whatever bound it is gone, so connecting to it is refused until a
    server of the test binds it.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])
