"""The dead-letter queue, for admins: look at what is there, send it back to be applied."""

from __future__ import annotations

import aio_pika
import aio_pika.abc

from scoreboard.errors import QueueUnavailable
from scoreboard.queue.broker_link import BROKER_FAILURES, connect_first
from scoreboard.queue.queue_layout import QueueLayout
from scoreboard.queue.rabbitmq import REASON_HEADER
from scoreboard.queue.signing import SIGNATURE_HEADER

# What the broker adds when it dead-letters or redelivers a message; a replayed message starts
# without them. Quorum queues add x-delivery-count, and x-first-death-* as classic ones do.
_BROKER_HEADER_PREFIXES = ("x-death", "x-first-death-", "x-last-death-", "x-delivery-count")


class DeadLetters:
    """Peek at and replay the dead-letter queue of a layout, on any node that answers."""

    def __init__(self, urls: tuple[str, ...], layout: QueueLayout) -> None:
        self._urls = urls
        self._layout = layout

    async def peek(self, limit: int) -> list[dict[str, object]]:
        """Up to `limit` dead letters, oldest first; they stay in the queue."""
        try:
            connection, _ = await connect_first(self._urls)
            async with connection:
                channel = await connection.channel()
                queue = await channel.get_queue(self._layout.dead_letter_queue)
                letters = []
                for _ in range(limit):
                    message = await queue.get(no_ack=False, fail=False)
                    if message is None:
                        break
                    letters.append(_describe(message))
                # Closing the channel unacknowledged puts every peeked message back.
            return letters
        except BROKER_FAILURES as exc:
            raise QueueUnavailable() from exc

    async def replay(self, limit: int) -> int:
        """Move up to `limit` dead letters back to their update queue; return how many moved."""
        moved = 0
        try:
            connection, _ = await connect_first(self._urls)
            async with connection:
                channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
                dead = await channel.get_queue(self._layout.dead_letter_queue)
                while moved < limit:
                    message = await dead.get(no_ack=False, fail=False)
                    if message is None:
                        break
                    priority = message.priority or 0
                    await channel.default_exchange.publish(
                        aio_pika.Message(
                            message.body,
                            content_type=message.content_type,
                            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                            message_id=message.message_id,
                            priority=priority,
                            headers={
                                k: v
                                for k, v in (message.headers or {}).items()
                                if k != REASON_HEADER and not k.startswith(_BROKER_HEADER_PREFIXES)
                            },
                        ),
                        routing_key=self._layout.queue_for(priority),
                        mandatory=True,
                    )
                    # Acknowledged only once the broker confirmed the copy: nothing is lost.
                    await message.ack()
                    moved += 1
        except BROKER_FAILURES as exc:
            raise QueueUnavailable() from exc
        return moved


def _describe(message: aio_pika.abc.AbstractIncomingMessage) -> dict[str, object]:
    headers = message.headers or {}
    deaths = headers.get("x-death") or []
    first_death = deaths[0] if isinstance(deaths, list) and deaths else {}
    # An update dead-lettered out of a group is a copy published there, not a rejected message.
    reason = headers.get(REASON_HEADER) or (
        first_death.get("reason", "") if isinstance(first_death, dict) else ""
    )
    return {
        "messageId": message.message_id,
        "body": message.body.decode(errors="replace")[:2000],
        "reason": str(reason),
        "signed": SIGNATURE_HEADER in (message.headers or {}),
    }
