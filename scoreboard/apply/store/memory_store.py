"""The board in process memory, for the single-process mode; same rules as the Redis store."""

from __future__ import annotations

import itertools
import time
from collections import OrderedDict
from collections.abc import Sequence

from limits.aio.storage import MemoryStorage
from sortedcontainers import SortedList

from scoreboard.apply.store import DEDUPLICATION_TTL_SECONDS
from scoreboard.apply.store.rankings import (
    BoardPage,
    RankedEntry,
    UserRank,
    ranked,
    user_rank_around,
)
from scoreboard.errors import ScoreOverflow
from scoreboard.intake.rate_limit import RateWindow, UserRateLimiter
from scoreboard.intake.rate_policy import RATE_LIMIT_EXAMPLE
from scoreboard.models import TOP_N, Leaderboard, LeaderboardEntry, ScoreUpdate

# (-score, seq, userId): ascending order is highest score first, then who reached it first.
_RankKey = tuple[int, int, str]


class MemoryLeaderboardStore:
    """LeaderboardStore in dicts; methods never await, so each one is atomic on the event loop."""

    def __init__(self) -> None:
        self._accepted: dict[str, int] = {}
        self._rank_keys: dict[str, _RankKey] = {}
        self._ranking: SortedList = SortedList()
        self._names: dict[str, str] = {}
        self._seq = itertools.count(1)
        # Message id: (when first seen, True once applied, False once cancelled).
        self._seen_messages: OrderedDict[str, tuple[float, bool]] = OrderedDict()
        self._published = Leaderboard(version=0, top=())
        self._requests = UserRateLimiter(MemoryStorage(), RATE_LIMIT_EXAMPLE, "score-update")

    async def reserve(
        self, update: ScoreUpdate, max_total: int, limit: RateWindow | None = None
    ) -> int:
        if limit is not None:
            await self._requests.check(update.user_id, limit.text)
        total = self._accepted.get(update.user_id, self._score(update.user_id)) + update.increment
        if total > max_total:
            raise ScoreOverflow()
        self._accepted[update.user_id] = total
        return total

    async def count_refused(self, user_id: str, limit: RateWindow) -> None:
        await self._requests.check(user_id, limit.text)

    async def release(self, update: ScoreUpdate) -> bool:
        if not self._remember(update.message_id, applied=False):
            return False
        self._accepted[update.user_id] -= update.increment
        return True

    async def apply(
        self,
        updates: Sequence[ScoreUpdate],
        sequences: Sequence[int] | None = None,
        forget: Sequence[str] = (),
    ) -> Leaderboard | None:
        await self.forget(forget)
        applied = False
        for index, update in enumerate(updates):
            if not self._remember(update.message_id, applied=True):
                continue
            total = self._score(update.user_id) + update.increment
            sequence = next(self._seq) if sequences is None else sequences[index]
            old_key = self._rank_keys.get(update.user_id)
            if old_key is not None:
                self._ranking.remove(old_key)
                sequence = max(sequence, old_key[1])
            new_key = (-total, sequence, update.user_id)
            self._ranking.add(new_key)
            self._rank_keys[update.user_id] = new_key
            self._names[update.user_id] = update.username
            applied = True
        if not applied:
            return None
        return self._publish_if_changed()

    def _publish_if_changed(self) -> Leaderboard | None:
        top = tuple(
            LeaderboardEntry(user_id=user, username=self._names[user], score=-negated)
            for negated, _, user in self._ranking.islice(0, TOP_N)
        )
        if top == self._published.top:
            return None
        self._published = Leaderboard(version=self._published.version + 1, top=top)
        return self._published

    async def remove_users(self, user_ids: Sequence[str] | None) -> Leaderboard | None:
        for user_id in list(self._rank_keys) if user_ids is None else user_ids:
            key = self._rank_keys.pop(user_id, None)
            if key is not None:
                self._ranking.remove(key)
            self._names.pop(user_id, None)
            self._accepted.pop(user_id, None)
        if user_ids is None:
            self._accepted.clear()
        return self._publish_if_changed()

    async def leaderboard(self) -> Leaderboard:
        return self._published

    async def board_page(self, offset: int, limit: int) -> BoardPage:
        rows = self._rows(offset, offset + limit)
        return BoardPage(self._published.version, len(self._ranking), rows)

    async def user_rank(self, user_id: str, around: int) -> UserRank | None:
        key = self._rank_keys.get(user_id)
        if key is None:
            return None
        index = self._ranking.index(key)
        first = max(0, index - around)
        window = self._rows(first, index + around + 1)
        return user_rank_around(self._published.version, len(self._ranking), window, user_id)

    def _rows(self, start: int, stop: int) -> tuple[RankedEntry, ...]:
        """Rows `start` to `stop` (0-based, stop excluded) of the ranking."""
        keys = self._ranking.islice(start, stop)
        return ranked(((user, self._names[user], -negated) for negated, _, user in keys), start + 1)

    def _score(self, user_id: str) -> int:
        key = self._rank_keys.get(user_id)
        return 0 if key is None else -key[0]

    async def forget(self, message_ids: Sequence[str]) -> None:
        # At once, with no grace: in one process a publish cannot time out, so nothing is cancelled
        # after it was applied.
        for message_id in message_ids:
            if self._seen_messages.get(message_id, (0.0, False))[1]:
                del self._seen_messages[message_id]

    def _remember(self, message_id: str, applied: bool) -> bool:
        """Record a message id; False when it was seen already (within the TTL)."""
        now = time.monotonic()
        while self._seen_messages:
            oldest_id, (seen_at, _) = next(iter(self._seen_messages.items()))
            if now - seen_at < DEDUPLICATION_TTL_SECONDS:
                break
            del self._seen_messages[oldest_id]
        if message_id in self._seen_messages:
            return False
        self._seen_messages[message_id] = (now, applied)
        return True
