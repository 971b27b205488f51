"""The board in process memory, for the single-process mode; same rules as the Redis store."""

from __future__ import annotations

import itertools
import time
from collections import OrderedDict, defaultdict
from collections.abc import Sequence

from limits.aio.storage import MemoryStorage
from sortedcontainers import SortedList

from scoreboard.apply.store import DEDUPLICATION_TTL_SECONDS, BoardBatch, Reservation
from scoreboard.apply.store.rankings import (
    BoardPage,
    RankedEntry,
    UserRank,
    ranked,
    user_rank_around,
)
from scoreboard.boards.model import GLOBAL_BOARD, GLOBAL_BOARD_ID, Board
from scoreboard.boards.values import value_after
from scoreboard.errors import BoardOutOfSync, ScoreOverflow
from scoreboard.intake.rate_limit import RateWindow, UserRateLimiter
from scoreboard.intake.rate_policy import RATE_LIMIT_EXAMPLE
from scoreboard.models import TOP_N, Leaderboard, LeaderboardEntry, ScoreUpdate

# (-score, seq, userId): ascending order is highest score first, then who reached it first.
_RankKey = tuple[int, int, str]


class MemoryLeaderboardStore:
    """LeaderboardStore in dicts; methods never await, so each one is atomic on the event loop."""

    def __init__(self, board: Board = GLOBAL_BOARD, season: int = 1) -> None:
        self.board, self.season = board, season
        self._sign = -1 if board.order == "desc" else 1
        # Shared by every season of every board: which stores exist, which seasons are live
        # (absent: 1) and how many updates each season has accepted and not applied yet.
        self._siblings: dict[tuple[str, int], MemoryLeaderboardStore] = {
            (board.board_id, season): self
        }
        self._live: dict[str, int] = {}
        self._pending: defaultdict[tuple[str, int], set[str]] = defaultdict(set)
        self._accepted: dict[str, int] = {}
        self._rank_keys: dict[str, _RankKey] = {}
        self._ranking: SortedList = SortedList()
        self._names: dict[str, str] = {}
        self._seq = itertools.count(1)
        # Message id: (when first seen, True once applied, False once cancelled).
        self._seen_messages: OrderedDict[str, tuple[float, bool]] = OrderedDict()
        self._published = Leaderboard(version=0, top=(), board_id=board.board_id, season=season)
        self._requests = UserRateLimiter(MemoryStorage(), RATE_LIMIT_EXAMPLE, "score-update")

    def for_board(self, board: Board, season: int = 1) -> MemoryLeaderboardStore:
        """The store of `board`'s `season`; message ids and rate limits are shared by all."""
        sibling = self._siblings.get((board.board_id, season))
        if sibling is None or not _same_rules(board, sibling.board):
            sibling = MemoryLeaderboardStore(board, season)
            sibling._seen_messages, sibling._requests = self._seen_messages, self._requests
            sibling._siblings, sibling._live = self._siblings, self._live
            sibling._pending = self._pending
            self._siblings[(board.board_id, season)] = sibling
        return sibling

    def kept_for(self, board_id: str, season: int) -> MemoryLeaderboardStore | None:
        """The store of that board's season if it was ever used, whatever its rules."""
        return self._siblings.get((board_id, season))

    def live_season(self, board_id: str) -> int:
        return self._live.get(board_id, 1)

    def move_season(self, board_id: str, season: int) -> int | None:
        """Start season `season + 1` if `season` is live; the version it starts at, else None."""
        if self.live_season(board_id) != season:
            return None
        self._live[board_id] = season + 1
        old = self._siblings.get((board_id, season))
        version = (0 if old is None else old._published.version) + 1
        new = self.for_board(Board(board_id, board_id) if old is None else old.board, season + 1)
        new._published = Leaderboard(version, (), board_id, season + 1)
        return version

    def pending(self, board_id: str, season: int) -> int:
        """Updates accepted in the season and not applied (nor cancelled) yet."""
        return len(self._pending.get((board_id, season), ()))

    def drop_season(self, board_id: str, season: int) -> None:
        self._siblings.pop((board_id, season), None)
        self._pending.pop((board_id, season), None)

    def drop_board(self, board_id: str) -> int:
        """Forget every season of a board; how many seasons were kept."""
        seasons = [key for key in self._siblings if key[0] == board_id]
        for key in seasons:
            del self._siblings[key]
        self._live.pop(board_id, None)
        return len(seasons)

    def user_count(self) -> int:
        return len(self._ranking)

    async def reserve(
        self, update: ScoreUpdate, max_total: int, limit: RateWindow | None = None
    ) -> int:
        return (await self.admit(update, max_total, limit)).new_score

    async def admit(
        self, update: ScoreUpdate, max_total: int, limit: RateWindow | None = None
    ) -> Reservation:
        if limit is not None:
            await self._requests.check(update.user_id, limit.text)
        board_id = self.board.board_id
        live = self.for_board(self.board, self.live_season(board_id))
        old = live._accepted.get(update.user_id, live._value(update.user_id))
        changed = value_after(self.board.operator, self.board.order, old, update.increment)
        new = old if changed is None else changed
        assert new is not None  # unchanged means there was a value
        if self.board.operator == "incr" and new > max_total:
            raise ScoreOverflow()
        live._accepted[update.user_id] = new
        if board_id != GLOBAL_BOARD_ID:
            self._pending[(board_id, live.season)].add(update.message_id)
        return Reservation(new, live.season)

    async def count_refused(self, user_id: str, limit: RateWindow) -> None:
        await self._requests.check(user_id, limit.text)

    async def release(self, update: ScoreUpdate) -> bool:
        if not self._remember(update.message_id, applied=False):
            return False
        if self.board.operator == "incr":
            self._accepted[update.user_id] -= update.increment
        else:  # what came before is not known here: start again from the applied value
            self._accepted.pop(update.user_id, None)
        self._settle_pending([update])
        return True

    def _settle_pending(self, updates: Sequence[ScoreUpdate]) -> None:
        pending = self._pending.get((self.board.board_id, self.season))
        if pending:
            pending.difference_update(u.message_id for u in updates)

    async def apply(
        self,
        updates: Sequence[ScoreUpdate],
        sequences: Sequence[int] | None = None,
        forget: Sequence[str] = (),
    ) -> Leaderboard | None:
        await self.forget(forget)
        self._settle_pending(updates)
        applied = False
        for index, update in enumerate(updates):
            if not self._remember(update.message_id, applied=True):
                continue
            old = self._value(update.user_id)
            new = value_after(self.board.operator, self.board.order, old, update.increment)
            self._names[update.user_id] = update.username
            applied = True
            if new is None:
                continue  # the user keeps the place they reached first
            sequence = next(self._seq) if sequences is None else sequences[index]
            if update.accepted_seq is not None:
                sequence = update.accepted_seq
            old_key = self._rank_keys.get(update.user_id)
            if old_key is not None:
                self._ranking.remove(old_key)
                sequence = max(sequence, old_key[1])
            new_key = (self._sign * new, sequence, update.user_id)
            self._ranking.add(new_key)
            self._rank_keys[update.user_id] = new_key
        if not applied:
            return None
        changed = self._publish_if_changed()
        # A season no longer live takes its late updates but pushes nothing: its subscribers
        # watch the new season now.
        return changed if self.season == self.live_season(self.board.board_id) else None

    async def apply_boards(
        self, batches: Sequence[BoardBatch], forget: Sequence[str] = ()
    ) -> list[Leaderboard | None | BoardOutOfSync]:
        await self.forget(forget)
        return [await b.store.apply(b.updates, b.sequences) for b in batches]

    def _publish_if_changed(self) -> Leaderboard | None:
        top = tuple(
            LeaderboardEntry(user_id=user, username=self._names[user], score=self._sign * signed)
            for signed, _, user in self._ranking.islice(0, TOP_N)
        )
        if top == self._published.top:
            return None
        version = self._published.version + 1
        self._published = Leaderboard(version, top, self.board.board_id, self.season)
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
        rows = ((user, self._names[user], self._sign * signed) for signed, _, user in keys)
        return ranked(rows, start + 1)

    def _value(self, user_id: str) -> int | None:
        key = self._rank_keys.get(user_id)
        return None if key is None else self._sign * key[0]

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


def _same_rules(a: Board, b: Board) -> bool:
    """Whether a store kept for `b` serves `a`: the same board, operator and order."""
    return (a.board_id, a.operator, a.order) == (b.board_id, b.operator, b.order)
