"""What the load tool's clients saw: when each user's score and each board version arrived."""

from __future__ import annotations

import json
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bench.board_spread import BoardUser
from scoreboard.boards.model import GLOBAL_BOARD_ID
from scoreboard.push.broadcast import LEADERBOARD_EVENT

NOT_A_BOARD = ("", -1)

BoardVersion = tuple[str, int]  # (board id, version)


class Sightings:
    """Every `leaderboardUpdate` the clients of one process received, folded as it arrives.

    Every client of a board gets the same payload for a version, so each distinct payload is
    parsed once; what the report needs is when a user's score on a board was first seen and
    when a board's version reached each client.
    """

    def __init__(self, user_ids: Iterable[str]) -> None:
        self._users = frozenset(user_ids)
        # Per (board, user) seen: the scores in rising order, when and in which version.
        self.scores: dict[BoardUser, list[int]] = {}
        self.times: dict[BoardUser, list[float]] = {}
        self.versions_at: dict[BoardUser, list[int]] = {}
        # (board, version) -> [clients that received it, first arrival, last arrival]
        self.arrivals: dict[BoardVersion, list[float]] = {}
        self._payload_versions: dict[bytes, BoardVersion] = {}

    def __getstate__(self) -> dict[str, object]:
        state = dict(self.__dict__)
        state["_payload_versions"] = {}
        return state

    def record(self, packet: bytes, at: float) -> BoardVersion:
        """Note one event packet's arrival at one client; return its board and version."""
        stamp = self._payload_versions.get(packet)
        if stamp is None:
            stamp = self._first_arrival(packet[2:], at)
            self._payload_versions[packet] = stamp
        arrival = self.arrivals.get(stamp)
        if arrival is None:
            self.arrivals[stamp] = [1, at, at]
        else:
            arrival[0] += 1
            if at > arrival[2]:
                arrival[2] = at
        return stamp

    def _first_arrival(self, payload: bytes, at: float) -> BoardVersion:
        try:
            name, board = json.loads(payload)[:2]
            if name != LEADERBOARD_EVENT:
                return NOT_A_BOARD
            board_id = str(board.get("boardId", GLOBAL_BOARD_ID))  # global's payload has none
            version = int(board["version"])
            top = [(str(entry["userId"]), int(entry["score"])) for entry in board["top10"]]
        except (ValueError, TypeError, KeyError, AttributeError):
            return NOT_A_BOARD
        for user, score in top:
            if user not in self._users:
                continue
            key = (board_id, user)
            scores = self.scores.get(key)
            if scores is None:
                self.scores[key], self.times[key], self.versions_at[key] = [], [], []
                scores = self.scores[key]
            if not scores or score > scores[-1]:
                scores.append(score)
                self.times[key].append(at)
                self.versions_at[key].append(version)
        return board_id, version


@dataclass(frozen=True)
class Sighting:
    """When a score was first seen by any client, and in which board version."""

    at: float
    version: int


def first_sighting(
    all_sightings: Sequence[Sightings], key: BoardUser, score: int
) -> Sighting | None:
    """The first time any client saw the user at exactly `score` on the board, or None.

    None when the score was never on a board a client received: superseded by the user's next
    update before a push (coalescing), or outside the top 10. Counting a later, higher score
    instead would time a user's climb into the top 10, not the service's delivery.
    """
    best: Sighting | None = None
    for sightings in all_sightings:
        scores = sightings.scores.get(key)
        if not scores:
            continue
        index = bisect_left(scores, score)
        if index == len(scores) or scores[index] != score:
            continue
        at = sightings.times[key][index]
        version = sightings.versions_at[key][index]
        if best is None:
            best = Sighting(at, version)
        else:
            best = Sighting(min(best.at, at), min(best.version, version))
    return best


def last_arrival(all_sightings: Sequence[Sightings], stamp: BoardVersion) -> tuple[int, float]:
    """How many clients received that board's version, and when the last of them did."""
    clients, last = 0, 0.0
    for sightings in all_sightings:
        arrival = sightings.arrivals.get(stamp)
        if arrival is not None:
            clients += int(arrival[0])
            last = max(last, arrival[2])
    return clients, last
