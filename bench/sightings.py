"""What the load tool's clients saw: when each user's score and each board version arrived."""

from __future__ import annotations

import json
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from scoreboard.push.broadcast import LEADERBOARD_EVENT

NOT_A_BOARD = -1


class Sightings:
    """Every `leaderboardUpdate` the clients of one process received, folded as it arrives.

    Every client gets the same payload for a version, so each distinct payload is parsed once;
    what the report needs is when a score was first seen and when a version reached each client.
    """

    def __init__(self, user_ids: Iterable[str]) -> None:
        self.scores: dict[str, list[int]] = {user: [] for user in user_ids}  # rising
        self.times: dict[str, list[float]] = {user: [] for user in self.scores}
        self.versions_at: dict[str, list[int]] = {user: [] for user in self.scores}
        # version -> [clients that received it, first arrival, last arrival]
        self.arrivals: dict[int, list[float]] = {}
        self._payload_versions: dict[bytes, int] = {}

    def __getstate__(self) -> dict[str, object]:
        state = dict(self.__dict__)
        state["_payload_versions"] = {}
        return state

    def record(self, packet: bytes, at: float) -> int:
        """Note one event packet's arrival at one client; return its board version."""
        version = self._payload_versions.get(packet)
        if version is None:
            version = self._first_arrival(packet[2:], at)
            self._payload_versions[packet] = version
        arrival = self.arrivals.get(version)
        if arrival is None:
            self.arrivals[version] = [1, at, at]
        else:
            arrival[0] += 1
            if at > arrival[2]:
                arrival[2] = at
        return version

    def _first_arrival(self, payload: bytes, at: float) -> int:
        try:
            name, board = json.loads(payload)[:2]
            if name != LEADERBOARD_EVENT:
                return NOT_A_BOARD
            version = int(board["version"])
            top = [(str(entry["userId"]), int(entry["score"])) for entry in board["top10"]]
        except (ValueError, TypeError, KeyError):
            return NOT_A_BOARD
        for user, score in top:
            scores = self.scores.get(user)
            if scores is not None and (not scores or score > scores[-1]):
                scores.append(score)
                self.times[user].append(at)
                self.versions_at[user].append(version)
        return version


@dataclass(frozen=True)
class Sighting:
    """When a score was first seen by any client, and in which board version."""

    at: float
    version: int


def first_sighting(all_sightings: Sequence[Sightings], user: str, score: int) -> Sighting | None:
    """The first time any client saw `user` at exactly `score`, or None if none did.

    None when the score was never on a board a client received: superseded by the user's next
    update before a push (coalescing), or outside the top 10. Counting a later, higher score
    instead would time a user's climb into the top 10, not the service's delivery.
    """
    best: Sighting | None = None
    for sightings in all_sightings:
        scores = sightings.scores.get(user)
        if not scores:
            continue
        index = bisect_left(scores, score)
        if index == len(scores) or scores[index] != score:
            continue
        at = sightings.times[user][index]
        version = sightings.versions_at[user][index]
        if best is None:
            best = Sighting(at, version)
        else:
            best = Sighting(min(best.at, at), min(best.version, version))
    return best


def last_arrival(all_sightings: Sequence[Sightings], version: int) -> tuple[int, float]:
    """How many clients received `version`, and when the last of them did."""
    clients, last = 0, 0.0
    for sightings in all_sightings:
        arrival = sightings.arrivals.get(version)
        if arrival is not None:
            clients += int(arrival[0])
            last = max(last, arrival[2])
    return clients, last
