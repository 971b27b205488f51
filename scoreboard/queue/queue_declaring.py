"""Declaring a layout's queues, and saying clearly when one exists with another type.

RabbitMQ refuses to redeclare a queue with other arguments (PRECONDITION_FAILED, which closes
the channel) and cannot change a queue's type in place; its refusal names the first argument
that differs, not the type. So on a refusal the queue is declared again, on a channel of its
own, as the other QUEUE_TYPE would have it: if that is accepted, the queue is of that type.
"""

from __future__ import annotations

import logging

import aio_pika.abc
import aiormq.exceptions

from scoreboard.config import CLASSIC_QUEUES, QUORUM_QUEUES
from scoreboard.config.variables import QUEUE_DELIVERY_LIMIT, QUEUE_TYPE
from scoreboard.errors import QueueLayoutConflict
from scoreboard.queue.broker_link import BROKER_FAILURES
from scoreboard.queue.queue_layout import Arguments, QueueLayout, level_queue_name

log = logging.getLogger(__name__)

MIGRATION_HELP = "see 'Changing the queue type' in docs/high-availability.md"


async def declare_queues(connection: aio_pika.abc.AbstractConnection, layout: QueueLayout) -> None:
    """Declare every update queue, then the dead-letter queue, durable, as `layout` has them.

    Raises QueueLayoutConflict, naming the queue, when one exists otherwise. The queue both
    types share, `<name>`, goes first: a change of type is found before anything is created.
    """
    by_level = sorted(layout.update_queues, key=lambda queue: queue.level)
    wanted = [(queue.name, queue.arguments) for queue in by_level]
    wanted.append((layout.dead_letter_queue, layout.dead_letter_arguments))
    channel = await connection.channel(publisher_confirms=False)
    try:
        for name, arguments in wanted:
            try:
                await channel.declare_queue(name, durable=True, arguments=arguments)
            except aiormq.exceptions.ChannelPreconditionFailed as refusal:
                raise await _conflict(connection, layout, name, refusal) from None
    finally:
        if not channel.is_closed:
            await channel.close()


async def existing_levels(
    connection: aio_pika.abc.AbstractConnection, layout: QueueLayout
) -> list[int]:
    """The levels outside the layout that still have a queue, from an earlier TIER_PRIORITIES.

    Their messages were accepted: a worker consumes them until they are gone.
    """
    found = []
    for level in layout.unused_levels:
        if await _exists(connection, level_queue_name(layout.name, level)):
            found.append(level)
    return found


async def _exists(connection: aio_pika.abc.AbstractConnection, name: str) -> bool:
    # A passive declare of a missing queue closes its channel: one channel per question.
    channel = await connection.channel(publisher_confirms=False)
    try:
        await channel.declare_queue(name, passive=True)
        return True
    except aiormq.exceptions.ChannelNotFoundEntity:
        return False
    finally:
        if not channel.is_closed:
            await channel.close()


async def _conflict(
    connection: aio_pika.abc.AbstractConnection,
    layout: QueueLayout,
    name: str,
    refusal: aiormq.exceptions.ChannelPreconditionFailed,
) -> QueueLayoutConflict:
    other_type = CLASSIC_QUEUES if layout.is_quorum else QUORUM_QUEUES
    other = _arguments_as(layout.with_type(other_type), name)
    if other is not None and await _accepts(connection, name, other):
        return QueueLayoutConflict(
            f"queue {name!r} is a {other_type} queue, but {QUEUE_TYPE.name} is "
            f"{layout.queue_type}: RabbitMQ cannot change the type of a queue. Drain it with "
            f"{QUEUE_TYPE.name}={other_type} (or use another QUEUE_NAME), delete it, then start "
            f"again; {MIGRATION_HELP}"
        )
    said = str(refusal.args[0]) if refusal.args else repr(refusal)
    return QueueLayoutConflict(
        f"queue {name!r} exists with other arguments than {QUEUE_TYPE.name}={layout.queue_type}"
        f" and {QUEUE_DELIVERY_LIMIT.name}={layout.delivery_limit} give it (the broker says: "
        f"{said.removeprefix('PRECONDITION_FAILED - ')}): RabbitMQ cannot change them in "
        f"place; {MIGRATION_HELP}"
    )


def _arguments_as(layout: QueueLayout, name: str) -> Arguments | None:
    """The arguments `layout` gives the queue `name`; None if it has no queue of that name."""
    if name == layout.dead_letter_queue:
        return layout.dead_letter_arguments
    candidates = layout.levels + layout.unused_levels
    for queue in (layout.update_queue(level) for level in candidates):
        if queue.name == name:
            return queue.arguments
    return None


async def _accepts(
    connection: aio_pika.abc.AbstractConnection, name: str, arguments: Arguments
) -> bool:
    """Whether the existing queue `name` has these arguments: declaring it so is then a no-op."""
    channel = await connection.channel(publisher_confirms=False)
    try:
        # Passive first: were it deleted meanwhile, the active declare would create it.
        await channel.declare_queue(name, passive=True)
        await channel.declare_queue(name, durable=True, arguments=arguments)
        return True
    except (aiormq.exceptions.ChannelPreconditionFailed, aiormq.exceptions.ChannelNotFoundEntity):
        return False
    except BROKER_FAILURES as exc:
        log.debug("could not tell the type of queue %r: %r", name, exc)
        return False
    finally:
        if not channel.is_closed:
            await channel.close()
