"""The load tool's worker processes: start them, talk to them over a pipe from asyncio, end them."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import resource
import signal
import traceback
from collections.abc import Callable, Coroutine
from multiprocessing.connection import Connection
from typing import Any

import uvloop

JOIN_SECONDS = 5.0


class ChildFailed(Exception):
    """A worker process died or reported an error; the message names it."""


async def receive(connection: Connection) -> Any:
    """The next object sent over the pipe, awaited without blocking the event loop."""
    if not connection.poll():
        loop = asyncio.get_running_loop()
        readable: asyncio.Future[None] = loop.create_future()
        fd = connection.fileno()

        def wake() -> None:
            if not readable.done():
                readable.set_result(None)

        loop.add_reader(fd, wake)
        try:
            await readable
        finally:
            loop.remove_reader(fd)
            # The loop made the pipe non-blocking; a message longer than the pipe's buffer
            # would then end in EAGAIN half-read (or half-written by the other direction).
            os.set_blocking(fd, True)
    return connection.recv()


def prepare_child() -> None:
    """What every worker process does first: leave Ctrl-C to the parent, allow many sockets."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise_open_files_limit()


def run_child(serve: Callable[[], Coroutine[Any, Any, None]], connection: Connection) -> None:
    """A worker process's whole life: prepare, serve the parent, report a crash over the pipe."""
    prepare_child()
    try:
        uvloop.run(serve())
    except (EOFError, BrokenPipeError):
        pass  # the parent is gone: nobody to report to
    except Exception:
        connection.send(("error", traceback.format_exc(limit=5)))


def raise_open_files_limit() -> int:
    """Raise this process's open-files limit to its hard limit; return the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


def cpu_seconds() -> float:
    """User plus system CPU time this process has used."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class ChildProcess:
    """A spawned process running `target(plan, connection)`, with our end of its pipe."""

    def __init__(self, name: str, target: Callable[[Any, Connection], None], plan: Any) -> None:
        context = multiprocessing.get_context("spawn")
        self.name = name
        self.connection, theirs = context.Pipe()
        self._process = context.Process(target=target, args=(plan, theirs), name=name, daemon=True)
        self._process.start()
        theirs.close()

    async def receive(self, expected: str) -> Any:
        """The payload of the next message, which must be of kind `expected`."""
        try:
            kind, payload = await receive(self.connection)
        except (EOFError, OSError):
            code = self._process.exitcode
            raise ChildFailed(f"{self.name} ended unexpectedly (exit code {code})") from None
        if kind == "error":
            raise ChildFailed(f"{self.name}: {payload}")
        if kind != expected:
            raise ChildFailed(f"{self.name} sent {kind!r} where {expected!r} was expected")
        return payload

    def send(self, kind: str, payload: Any = None) -> None:
        try:
            self.connection.send((kind, payload))
        except (BrokenPipeError, OSError):
            raise ChildFailed(f"{self.name} is gone") from None

    def end(self) -> None:
        """Make sure the process is gone: terminate it, kill it if it lingers."""
        if self._process.is_alive():
            self._process.terminate()
            self._process.join(JOIN_SECONDS)
            if self._process.is_alive():
                self._process.kill()
        self._process.join(JOIN_SECONDS)
        self.connection.close()

    def join(self) -> None:
        """Wait for a process that has finished its work to exit by itself."""
        self._process.join(JOIN_SECONDS)
        self.end()
