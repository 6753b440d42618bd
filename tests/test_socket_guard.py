"""The socket guard must stop any connection that leaves the machine."""

import socket

import pytest

from tests.conftest import NetworkAccessError


def test_outbound_connection_is_refused():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        with pytest.raises(NetworkAccessError, match=r"93\.184\.216\.34"):
            s.connect(("93.184.216.34", 80))
    finally:
        s.close()


def test_name_resolution_is_refused():
    with pytest.raises(NetworkAccessError, match=r"example\.org"):
        socket.getaddrinfo("example.org", 443)


def test_loopback_is_allowed():
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        client.connect(server.getsockname())
        conn, _ = server.accept()
        conn.close()
    finally:
        client.close()
        server.close()
