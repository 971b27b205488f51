"""Group commit: work that arrives while the previous group is on its way goes together.

A lone request on a quiet node is sent at once (on the next turn of the event loop). Under load
every call carries all the requests that queued behind the one before, and a node that sent a
group a moment ago waits up to `linger_seconds` for more before the next: so the cost per
request falls as the load rises instead of staying the same.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class GroupCommit(Generic[Item, Result]):
    """Calls `commit` with every item that waits; each caller gets its own item's result.

    `commit` returns one result per item, in order; an exception in place of a result is
    raised to that item's caller alone, an exception `commit` raises to every caller of the group.
    """

    def __init__(
        self,
        commit: Callable[[Sequence[Item]], Awaitable[Sequence[Result | BaseException]]],
        max_group: int = 512,
        observe_size: Callable[[int], None] | None = None,
        linger_seconds: float = 0.0,
    ) -> None:
        self._commit = commit
        self._linger = linger_seconds
        self._last_sent = float("-inf")
        self._max_group = max_group
        self._observe_size = observe_size
        self._waiting: list[tuple[Item, asyncio.Future[Result]]] = []
        self._sending: asyncio.Task[None] | None = None
        self.groups = 0  # calls made, for tests

    async def submit(self, item: Item) -> Result:
        """`item`'s result once its group is committed; the group's exception if it failed."""
        result: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, result))
        if self._sending is None or self._sending.done():
            self._sending = asyncio.create_task(self._send())
        return await result

    async def _send(self) -> None:
        loop = asyncio.get_running_loop()
        while self._waiting:
            if self._linger and loop.time() - self._last_sent < self._linger:
                # Busy: a group went a moment ago. Let this one fill for as long, at most.
                await asyncio.sleep(self._linger - (loop.time() - self._last_sent))
            self._last_sent = loop.time()
            group = self._waiting[: self._max_group]
            del self._waiting[: self._max_group]
            self.groups += 1
            if self._observe_size is not None:
                self._observe_size(len(group))
            try:
                results = await self._commit([item for item, _ in group])
            except Exception as failure:  # every caller of the group learns it
                for _, result in group:
                    if not result.done():
                        result.set_exception(failure)
                continue
            for (_, result), value in zip(group, results, strict=True):
                if result.done():
                    continue
                if isinstance(value, BaseException):
                    result.set_exception(value)
                else:
                    result.set_result(value)
