"""Which queues carry the updates, and with which arguments, for each QUEUE_TYPE.

Classic: one queue, `<name>`, whose `x-max-priority` lets higher priorities overtake a backlog.
Quorum: quorum queues on RabbitMQ 3.x have no priorities, so each priority level in use has
a queue of its own (`<name>` for level 0, `<name>.p<n>` above) and the worker takes from them
by weight (queue/priority_levels.py). Both have the dead-letter queue `<name>.dead`.
"""

from __future__ import annotations

from dataclasses import dataclass

import aio_pika.abc

from scoreboard.config import CLASSIC_QUEUES, MAX_PRIORITY, QUORUM_QUEUES, Settings
from scoreboard.config.variables import QUEUE_DELIVERY_LIMIT

Arguments = dict[str, aio_pika.abc.FieldValue]


def dead_letter_queue_name(queue_name: str) -> str:
    return f"{queue_name}.dead"


def level_queue_name(queue_name: str, level: int) -> str:
    """The quorum queue of one priority level; level 0 keeps the plain name."""
    return queue_name if level == 0 else f"{queue_name}.p{level}"


@dataclass(frozen=True)
class UpdateQueue:
    """A queue the updates of one priority level (classic: of every level) go to."""

    name: str
    level: int
    arguments: Arguments


@dataclass(frozen=True)
class QueueLayout:
    """The update queues and the dead-letter queue of a deployment."""

    name: str
    queue_type: str = CLASSIC_QUEUES
    priorities: frozenset[int] = frozenset()  # every priority a tier may have (TIER_PRIORITIES)
    delivery_limit: int = QUEUE_DELIVERY_LIMIT.default

    @classmethod
    def of(cls, settings: Settings) -> QueueLayout:
        return cls(
            settings.queue_name,
            settings.queue_type,
            frozenset(priority for _, priority in settings.tier_priorities),
            settings.queue_delivery_limit,
        )

    @property
    def is_quorum(self) -> bool:
        return self.queue_type == QUORUM_QUEUES

    @property
    def broker_counts_deliveries(self) -> bool:
        """The broker dead-letters a message returned too often (quorum's x-delivery-limit)."""
        return self.is_quorum

    @property
    def levels(self) -> tuple[int, ...]:
        """The priority levels with a queue of their own, highest first."""
        if not self.is_quorum:
            return (0,)
        return tuple(sorted(self.priorities | {0}, reverse=True))

    @property
    def update_queues(self) -> tuple[UpdateQueue, ...]:
        """The queues to declare and consume, highest level first."""
        return tuple(self.update_queue(level) for level in self.levels)

    @property
    def unused_levels(self) -> tuple[int, ...]:
        """Levels a queue may exist for from an earlier TIER_PRIORITIES (quorum only)."""
        if not self.is_quorum:
            return ()
        return tuple(n for n in range(MAX_PRIORITY, 0, -1) if n not in self.levels)

    def update_queue(self, level: int) -> UpdateQueue:
        if not self.is_quorum:
            return UpdateQueue(self.name, 0, self._classic_arguments())
        return UpdateQueue(level_queue_name(self.name, level), level, self._quorum_arguments())

    def queue_for(self, priority: int) -> str:
        """Where a message of `priority` goes: the highest level not above it."""
        return self.update_queue(max(n for n in self.levels if n <= priority)).name

    @property
    def dead_letter_queue(self) -> str:
        return dead_letter_queue_name(self.name)

    @property
    def dead_letter_arguments(self) -> Arguments:
        # No delivery limit there: an admin's peek hands its messages back each time.
        return {"x-queue-type": QUORUM_QUEUES} if self.is_quorum else {}

    def with_type(self, queue_type: str) -> QueueLayout:
        """The same deployment had it been given another QUEUE_TYPE."""
        return QueueLayout(self.name, queue_type, self.priorities, self.delivery_limit)

    def _dead_lettering(self) -> Arguments:
        return {
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": self.dead_letter_queue,
        }

    def _classic_arguments(self) -> Arguments:
        return {**self._dead_lettering(), "x-max-priority": MAX_PRIORITY}

    def _quorum_arguments(self) -> Arguments:
        return {
            "x-queue-type": QUORUM_QUEUES,
            **self._dead_lettering(),
            "x-delivery-limit": self.delivery_limit,
            # The queue keeps a dead letter until the dead-letter queue has confirmed it,
            # rather than the default of sending it once, unconfirmed; RabbitMQ allows that only
            # with reject-publish, which never applies here since the queue has no length limit.
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
        }
