"""Several server processes on one listening socket, every connection sent without delay.

With `--workers`, uvicorn binds the socket itself, without a protocol number, and asyncio turns
Nagle's algorithm off only on the connections of sockets it knows to be TCP: each worker's
connections then hold back the end of an answer until the client acknowledges its start, which
a client keeping its connection open does up to 40 ms later. Set on the listening socket,
TCP_NODELAY is inherited by every connection it accepts. Imports nothing of citygrid, so the
benchmarks serve their peers the same way (`python -m api.workers APP --workers N`).
"""

from __future__ import annotations

import argparse
import socket
from typing import Any

import uvicorn
from uvicorn.supervisors import Multiprocess


def listening_socket(config: uvicorn.Config) -> socket.socket:
    """The configuration's socket, bound, with Nagle's algorithm off for what it accepts."""
    sock = config.bind_socket()
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def run(app: str, workers: int, **options: Any) -> None:
    """Serve `app` (an import string) from `workers` processes until stopped."""
    config = uvicorn.Config(app, workers=workers, **options)
    Multiprocess(config, sockets=[listening_socket(config)]).run()


def main() -> None:
    """`python -m api.workers APP --port P --workers N [--factory]`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("app")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--factory", action="store_true")
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args()
    run(
        args.app,
        args.workers,
        host=args.host,
        port=args.port,
        factory=args.factory,
        log_level=args.log_level,
    )


if __name__ == "__main__":
    main()
