"""Where a citygrid worker spends its time: one server in this process, profiled in every thread.

Starts citygrid (as `bench/scaled.py` does, on the benchmark database, one worker) inside this
process, lets `wrk` send one request for `--seconds`, profiles every thread (the worker threads
of synchronous routes included, which a plain cProfile run would miss) and prints the functions
taking the most time on their own and with what they call. Shares of the time do not depend on
how busy the machine is, unlike requests/s.

Run: python bench/profile_server.py /collections/cases/items/123456
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import subprocess
import threading
import time
from contextlib import suppress

import uvicorn
from scaled import prepare, signed_in

from api.asgi import build
from api.settings import DatabaseSettings


class Profiles:
    """One cProfile per thread (the event loop's and every worker thread's), merged at the end."""

    def __init__(self) -> None:
        self.profiles: list[cProfile.Profile] = []
        self.lock = threading.Lock()

    def start(self) -> None:
        """Profile this thread and every thread started from now on."""
        threading.setprofile(self._first_call)
        self._add()

    def _first_call(self, *_: object) -> None:
        self._add()

    def _add(self) -> None:
        profile = cProfile.Profile(time.thread_time)  # CPU time: the load of others stays out
        with self.lock:
            self.profiles.append(profile)
        profile.enable()  # replaces the hook that called us, in this thread only

    def stop(self) -> pstats.Stats:
        """Every thread's profile, merged."""
        threading.setprofile(None)  # type: ignore[arg-type]
        for profile in self.profiles:
            profile.disable()
        stats = pstats.Stats(self.profiles[0])
        for profile in self.profiles[1:]:
            with suppress(TypeError):  # a thread that never ran profiled code
                stats.add(profile)
        return stats


def wrk(url: str, seconds: int, connections: int, headers: dict[str, str]) -> str:
    sent = [part for name, value in headers.items() for part in ("-H", f"{name}: {value}")]
    command = ["wrk", f"-t{min(2, connections)}", f"-c{connections}", f"-d{seconds}s", *sent, url]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", help="the request, e.g. /collections/cases/items/123456")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--port", type=int, default=8811)
    parser.add_argument("--anonymous", action="store_true", help="send no credentials")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--demo", action="store_true", help="the demo city, not the scaled one")
    parser.add_argument("--database-url", help="another migrated database (default: the bench's)")
    args = parser.parse_args()
    url = args.database_url or prepare(DatabaseSettings(), args.demo)
    env, auth = signed_in(url)
    os.environ.update({"CITYGRID_DATABASE_URL": url, **env})
    config = uvicorn.Config(build, factory=True, port=args.port, log_level="warning")
    server = uvicorn.Server(config)
    profiles = Profiles()
    headers = {} if args.anonymous else auth

    def drive() -> None:
        while not server.started:
            time.sleep(0.1)
        target = f"http://127.0.0.1:{args.port}{args.path}"
        try:
            print(wrk(target, args.seconds, args.connections, headers), flush=True)
        finally:
            server.should_exit = True

    threading.Thread(target=drive, daemon=True).start()
    profiles.start()  # before the server starts its threads, which inherit the hook
    asyncio.run(server.serve())
    stats = profiles.stop()
    stats.sort_stats("tottime").print_stats(args.top)
    stats.sort_stats("cumulative").print_stats(args.top)


if __name__ == "__main__":
    main()
