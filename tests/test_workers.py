"""Several API processes share one listening socket whose connections send without delay:
uvicorn's own socket would leave Nagle's algorithm on for each worker's connections (an answer's
end held back until the client acknowledges its start, up to 40 ms on a kept-alive connection)."""

from __future__ import annotations

import socket
from collections.abc import Callable

import uvicorn

from api.workers import listening_socket
from tests.support import free_port


def _accepted_delay(bind: Callable[[uvicorn.Config], socket.socket]) -> int:
    """TCP_NODELAY of a connection accepted on the socket `bind` makes."""
    config = uvicorn.Config("api.asgi:build", factory=True, host="127.0.0.1", port=free_port())
    listener = bind(config)
    listener.listen()
    try:
        with socket.create_connection(listener.getsockname()) as _client:
            accepted, _ = listener.accept()
            with accepted:
                return accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    finally:
        listener.close()


def test_connections_of_the_workers_socket_send_without_delay() -> None:
    assert _accepted_delay(listening_socket) != 0


def test_uvicorns_own_socket_would_not() -> None:
    """The premise: without the option on the listener, its connections keep Nagle's delay."""
    assert _accepted_delay(lambda config: config.bind_socket()) == 0
