"""The queue seam: the web process publishes updates, the worker consumes them in batches."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Protocol

from scoreboard.models import ScoreUpdate


class UpdatePublisher(Protocol):
    """Hands an update to the queue."""

    async def publish(self, update: ScoreUpdate) -> None:
        """Return once the queue holds `update` durably; raise QueueUnavailable otherwise."""


class UpdateBatch(Protocol):
    """Updates taken from the queue together; acknowledged together once applied."""

    @property
    def updates(self) -> Sequence[ScoreUpdate]: ...

    async def ack(self) -> None:
        """Tell the queue these updates are applied and may be forgotten."""


class UpdateConsumer(Protocol):
    """Yields batches of queued updates until stopped."""

    def batches(self) -> AsyncIterator[UpdateBatch]: ...

    async def stop(self) -> None:
        """Take no new messages; `batches()` ends once what was taken is yielded."""
