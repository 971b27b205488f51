"""`leaderboardUpdate`: one name, one payload shape, sent to everyone or to one client."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

from scoreboard.models import Leaderboard, LeaderboardEntry
from scoreboard.push.broadcast import LEADERBOARD_EVENT, Broadcaster, board_room, room_board

PACKAGE = Path(__file__).resolve().parent.parent / "scoreboard"
# This module, and the OpenAPI document (its schema's `const`), maintained apart.
MODULES_SPELLING_IT_OUT = {"push/broadcast.py"}

BOARD = Leaderboard(
    version=7,
    top=(LeaderboardEntry("bob", "Bob", 40), LeaderboardEntry("alice", "Alice", 35)),
)


WEEKLY = Leaderboard(
    version=3, top=(LeaderboardEntry("carol", "Carol", 9),), board_id="weekly", season=2
)


class RecordingEmitter:
    def __init__(self) -> None:
        self.emitted: list[tuple[str, Any, dict[str, Any]]] = []

    async def emit(self, event: str, data: Any, namespace: str | None = None, **options: Any):
        self.emitted.append((event, data, {"namespace": namespace, **options}))


def test_globals_payload_has_exactly_the_documented_shape():
    assert Broadcaster.payload(BOARD) == {
        "event": "leaderboardUpdate",
        "version": 7,
        "top10": [
            {"userId": "bob", "username": "Bob", "score": 40},
            {"userId": "alice", "username": "Alice", "score": 35},
        ],
    }


async def test_a_broadcast_goes_to_its_boards_room_through_every_node():
    emitter = RecordingEmitter()
    await Broadcaster(emitter).broadcast_top10(BOARD)
    await Broadcaster(emitter).broadcast_top10(WEEKLY)
    assert emitter.emitted == [
        (LEADERBOARD_EVENT, Broadcaster.payload(BOARD), {"namespace": "/", "room": "board:global"}),
        (
            LEADERBOARD_EVENT,
            Broadcaster.payload(WEEKLY),
            {"namespace": "/", "room": "board:weekly"},
        ),
    ]


def test_every_other_board_says_which_board_and_season_it_is():
    assert Broadcaster.payload(WEEKLY) == {
        "event": "leaderboardUpdate",
        "boardId": "weekly",
        "season": 2,
        "version": 3,
        "top10": [{"userId": "carol", "username": "Carol", "score": 9}],
    }


def test_each_board_has_one_room_and_only_board_rooms_name_a_board():
    assert {board_room("global"), board_room("weekly")} == {"board:global", "board:weekly"}
    assert room_board(board_room("weekly")) == "weekly"
    assert room_board("a-client-sid") is None
    assert room_board(["board:weekly"]) is None


async def test_a_snapshot_goes_to_one_client_of_this_node_only():
    emitter = RecordingEmitter()
    await Broadcaster(emitter).send_snapshot(BOARD, "sid-1")
    options = {"namespace": "/", "to": "sid-1", "ignore_queue": True}
    assert emitter.emitted == [(LEADERBOARD_EVENT, Broadcaster.payload(BOARD), options)]


def test_the_event_name_is_spelled_out_in_one_module_of_the_service():
    spelled_out = {
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Constant) and node.value == LEADERBOARD_EVENT
    }
    assert spelled_out == MODULES_SPELLING_IT_OUT
