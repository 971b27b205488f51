"""The Redis pub/sub channels top-10 pushes travel on: one per board, and the shared one.

A board's pushes go on its own channel, `<REDIS_KEY_PREFIX>socketio:board:<boardId>`, and a web
node subscribes only to the channels of the boards its clients hold: a push of a board no client
of a node holds never reaches that node, so what a node hears grows with its own clients, not
with the deployment.

The shared channel, `<REDIS_KEY_PREFIX>socketio`, is python-socketio's: before per-board channels
every push went there and every web node heard every push. Web nodes still listen there (a worker
of the older version publishes there during a rolling upgrade), and publishers still send there
too while a web node of the older version listens. Those are told apart by the marker channel,
which every newer web node subscribes to and nobody publishes on: the shared channel has more
subscribers than the marker only while an older node listens.
"""

from __future__ import annotations

from dataclasses import dataclass

_BOARD_INFIX = ":board:"
_MARKER_SUFFIX = ":per-board"


@dataclass(frozen=True)
class PushChannels:
    """The channel names of one deployment, derived from its shared channel."""

    shared: str

    @property
    def marker(self) -> str:
        """Subscribed by every web node that hears per-board channels; never published on."""
        return f"{self.shared}{_MARKER_SUFFIX}"

    def board(self, board_id: str) -> str:
        return f"{self.shared}{_BOARD_INFIX}{board_id}"

    def board_of(self, channel: str) -> str | None:
        """The board whose channel `channel` is; None for any other channel."""
        prefix = f"{self.shared}{_BOARD_INFIX}"
        if channel.startswith(prefix) and len(channel) > len(prefix):
            return channel[len(prefix) :]
        return None
