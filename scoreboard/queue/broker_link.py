"""A connection to whichever node of the broker answers, made again on another when it drops.

aio-pika's robust connection reconnects to the one URL it was given; a cluster has several
nodes, and the node that died is the one not to wait for. BrokerLink tries the URLs in turn,
starting after the one that was lost, and sets the connection up again each time (channels,
queues, consumers) through the owner's `on_connected`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import aio_pika
import aio_pika.abc
import aiormq.exceptions
from yarl import URL

from scoreboard.errors import QueueLayoutConflict

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 10.0
FIRST_RETRY_DELAY_SECONDS = 0.5
MAX_RECONNECT_DELAY_SECONDS = 2.0  # a node that is back is found within 2 seconds
# Every way a broker operation can fail without telling us what the broker did.
BROKER_FAILURES = (
    asyncio.TimeoutError,
    aiormq.exceptions.AMQPError,
    aiormq.exceptions.ChannelInvalidStateError,
    ConnectionError,
    OSError,
)

Connected = Callable[[aio_pika.abc.AbstractConnection], Awaitable[None]]


def shown_url(url: str) -> str:
    """The URL without its password, for logs."""
    parsed = URL(url)
    return str(parsed.with_password("***")) if parsed.password else url


async def connect_first(
    urls: tuple[str, ...], timeout: float = CONNECT_TIMEOUT_SECONDS, start: int = 0
) -> tuple[aio_pika.abc.AbstractConnection, int]:
    """A connection to the first node that answers, from `start` on; and its index.

    Raises the last node's failure when none answers.
    """
    failure: BaseException | None = None
    for step in range(len(urls)):
        index = (start + step) % len(urls)
        try:
            return await aio_pika.connect(urls[index], timeout=timeout), index
        except BROKER_FAILURES as exc:
            failure = exc
            if len(urls) > 1:
                log.info("broker node %s does not answer: %r", shown_url(urls[index]), exc)
    assert failure is not None
    raise failure


class BrokerLink:
    """Keeps one connection open to a node of the broker, set up by `on_connected`."""

    def __init__(self, urls: tuple[str, ...], who: str, on_connected: Connected) -> None:
        if not urls:
            raise ValueError("no broker URL")
        self._urls = urls
        self._who = who
        self._on_connected = on_connected
        self._next = 0
        self._connection: aio_pika.abc.AbstractConnection | None = None
        self._lost = asyncio.Event()
        self._keeping: asyncio.Task[None] | None = None
        self._closing = False
        self._dropping: set[asyncio.Task[None]] = set()
        # What a reconnection found at odds with the configuration, if anything.
        self.conflict: QueueLayoutConflict | None = None
        self.conflicted = asyncio.Event()

    @property
    def connection(self) -> aio_pika.abc.AbstractConnection | None:
        return self._connection

    async def connect(self) -> None:
        """One round over the nodes; raises the last failure, or QueueLayoutConflict."""
        connection, index = await connect_first(self._urls, start=self._next)
        # The next round starts after this node: if it is the one that died, it is tried last.
        self._next = index + 1
        try:
            await self._on_connected(connection)
        except BaseException:
            await _close_quietly(connection)
            raise
        self._lost.clear()
        self._connection = connection
        connection.close_callbacks.add(self._on_close)
        if connection.is_closed:  # it died before the callback was in place
            self._on_close(connection, None)
        if len(self._urls) > 1:
            log.info("%s: connected to broker node %s", self._who, shown_url(self._urls[index]))

    async def connect_patiently(self) -> None:
        """Go round the nodes until one answers, backing off up to 2 seconds between rounds.

        Raises QueueLayoutConflict: waiting would not change the queues.
        """
        delay = FIRST_RETRY_DELAY_SECONDS
        while True:
            try:
                await self.connect()
                return
            except BROKER_FAILURES as exc:
                log.warning("%s: broker unreachable (%r), retrying in %.1fs", self._who, exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_RECONNECT_DELAY_SECONDS)

    def keep_connected(self) -> None:
        """From now on, whenever the connection is lost, connect again (in the background)."""
        if self._keeping is None:
            self._keeping = asyncio.create_task(self._keep_connected())

    async def conflict_found(self) -> QueueLayoutConflict:
        """Wait until a reconnection finds the queues at odds with the configuration."""
        await self.conflicted.wait()
        assert self.conflict is not None
        return self.conflict

    def drop(self) -> None:
        """Close the connection so that a new one is made (a channel of it closed under us)."""
        connection = self._connection
        if connection is not None and not connection.is_closed and not self._closing:
            task = asyncio.create_task(_close_quietly(connection))
            self._dropping.add(task)
            task.add_done_callback(self._dropping.discard)

    def _on_close(self, sender: object, exc: BaseException | None) -> None:
        if sender is self._connection:
            if not self._closing:
                log.warning("%s: lost the broker connection (%r); reconnecting", self._who, exc)
            self._connection = None
            self._lost.set()

    async def _keep_connected(self) -> None:
        if self._connection is None:
            self._lost.set()  # not connected yet: start at once
        while True:
            await self._lost.wait()
            try:
                await self.connect_patiently()
            except QueueLayoutConflict as exc:
                self.conflict = exc  # the owner logs it and stops its process
                self.conflicted.set()
                return

    async def close(self) -> None:
        self._closing = True
        if self._keeping is not None:
            self._keeping.cancel()
            await asyncio.gather(self._keeping, return_exceptions=True)
        if self._connection is not None:
            await _close_quietly(self._connection)


async def _close_quietly(connection: aio_pika.abc.AbstractConnection) -> None:
    try:
        # Bounded: a node that stopped answering would never confirm the close.
        async with asyncio.timeout(CONNECT_TIMEOUT_SECONDS):
            await connection.close()
    except BROKER_FAILURES as exc:
        log.debug("closing a broker connection failed: %r", exc)
