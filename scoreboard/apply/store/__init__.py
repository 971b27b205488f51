"""The board's storage seam: what the web process and the worker need from it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from scoreboard.apply.store.rankings import BoardPage, UserRank
from scoreboard.boards.model import Board
from scoreboard.errors import BoardOutOfSync
from scoreboard.intake.rate_limit import RateWindow
from scoreboard.models import Leaderboard, ScoreUpdate

# How long a message id is remembered to drop a redelivery or honour a cancellation, unless the
# update is forgotten sooner (see LeaderboardStore.forget).
DEDUPLICATION_TTL_SECONDS = 24 * 60 * 60
# How long a forgotten update's id is still remembered. Its message can no longer come back, but
# a web node whose publish timed out (after 2 s) may be about to cancel the update: it must find
# it applied, or it would answer 503 for an update on the board.
FORGET_GRACE_SECONDS = 30


class Reservation(NamedTuple):
    """An accepted update: the user's value once it is applied, the season it counts in, and
    (boards other than `global`, else None) its place in the order updates were accepted in."""

    new_score: int
    season: int
    accepted_seq: int | None = None


@dataclass(frozen=True)
class BoardBatch:
    """One board season's share of a worker's batch: its store (from for_board()), its updates
    and the sequences that order their ties (see LeaderboardStore.apply)."""

    store: LeaderboardStore
    updates: Sequence[ScoreUpdate]
    sequences: Sequence[int] | None = None


class LeaderboardStore(Protocol):
    """One season of one board: scores, usernames and the published top 10, shared by every
    process of a deployment. The store of the deployment's `global` board hands out the others."""

    def for_board(self, board: Board, season: int = 1) -> LeaderboardStore:
        """The store of `board`'s `season`, sharing this one's connections and group commits."""

    async def reserve(
        self, update: ScoreUpdate, max_total: int, limit: RateWindow | None = None
    ) -> int:
        """Count `update` as accepted (in the board's live season, see admit()) and return the
        user's score once it is applied.

        With a `limit`, the update first counts as one of its user's requests; RateLimited
        when the user is over it. Raises ScoreOverflow when the score would pass `max_total`.
        Neither refusal counts as accepted.
        """

    async def admit(
        self, update: ScoreUpdate, max_total: int, limit: RateWindow | None = None
    ) -> Reservation:
        """reserve(), in the board's live season whatever this store's: the season the update
        counts in comes back with the score (the closer waits for it to be applied)."""

    async def count_refused(self, user_id: str, limit: RateWindow) -> None:
        """Count a request refused for its content against `limit`; RateLimited when over it."""

    async def release(self, update: ScoreUpdate) -> bool:
        """Undo a reservation whose message may not have been queued.

        Returns True when the update will never be applied (the worker drops it
        if it arrives later), False when a worker has applied it already.
        """

    async def apply(
        self,
        updates: Sequence[ScoreUpdate],
        sequences: Sequence[int] | None = None,
        forget: Sequence[str] = (),
    ) -> Leaderboard | None:
        """Apply each update exactly once (redeliveries are skipped).

        `sequences` orders ties on `global`: the ledger's entry ids when there is a ledger, so
        a board rebuilt from it ranks equal scores the same way; without them the store draws
        its own. Other boards order by each update's `accepted_seq`.
        `forget`: ids of earlier updates to forget (see forget()), in the same call; forgotten
        even when this batch is refused.
        Returns the new top of the board when it changed, else None.
        """

    async def apply_boards(
        self, batches: Sequence[BoardBatch], forget: Sequence[str] = ()
    ) -> list[Leaderboard | None | BoardOutOfSync]:
        """apply() each batch on its own store, all in one round trip where the store can.

        Each batch's outcome, in order: its board's new top, None, or BoardOutOfSync when the
        board must be rebuilt from the ledger first (nothing of that batch was applied).
        Other refusals raise, as apply() does; the batches before may stand applied.
        """

    async def forget(self, message_ids: Sequence[str]) -> None:
        """These updates' messages can never be delivered again: stop remembering the applied
        ones (the Redis store after FORGET_GRACE_SECONDS). Cancelled ids stay remembered."""

    async def remove_users(self, user_ids: Sequence[str] | None) -> Leaderboard | None:
        """Take these users (None: everyone) off the board, their accepted totals too.

        Returns the new top of the board when it changed, else None.
        """

    async def leaderboard(self) -> Leaderboard:
        """The most recently published top of the board."""

    async def board_page(self, offset: int, limit: int) -> BoardPage:
        """Up to `limit` rows from rank `offset + 1` on, with the version and the user count.

        Rows, version and count are read at one moment: at offset 0 the first ten rows are
        the top 10 of that version.
        """

    async def user_rank(self, user_id: str, around: int) -> UserRank | None:
        """The user's row and up to `around` rows on each side; None when they have no score."""
