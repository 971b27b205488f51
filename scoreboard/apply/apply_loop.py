"""Take a batch, record it, apply it exactly once, acknowledge it, broadcast the new top 10."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from scoreboard.apply.forgetting import Forgetting
from scoreboard.apply.ledger.postgres import PostgresLedger
from scoreboard.apply.ledger.rebuild import ensure_board_matches_ledger
from scoreboard.apply.ledger.seasons import LedgerSeasons
from scoreboard.apply.redeliveries import RedeliveryCounter
from scoreboard.apply.store import BoardBatch, LeaderboardStore
from scoreboard.apply.store.redis_store import RedisLeaderboardStore
from scoreboard.boards.model import GLOBAL_BOARD, GLOBAL_BOARD_ID, Board
from scoreboard.errors import BoardOutOfSync, SeasonClosed
from scoreboard.models import Leaderboard, ScoreUpdate
from scoreboard.ops.metrics import Metrics
from scoreboard.ops.request_ids import bound_request_id
from scoreboard.push.broadcast import TopTenPusher
from scoreboard.queue import Delivery, UpdateConsumer
from scoreboard.retry import until_available

log = logging.getLogger(__name__)

# The worker logs what it applied as one INFO line at most this often; each update at DEBUG.
SUMMARY_INTERVAL_SECONDS = 5.0


@dataclass
class ApplyStats:
    """What a worker did, for its shutdown summary."""

    batches: int = 0
    updates: int = 0
    broadcasts: int = 0
    dead_lettered: int = 0
    last_batch_at: float | None = None  # wall clock, for the heartbeat

    def summary(self) -> str:
        return (
            f"{self.updates} updates in {self.batches} batches, {self.broadcasts} broadcasts, "
            f"{self.dead_lettered} dead-lettered"
        )


@dataclass(frozen=True)
class Ledgered:
    """A ledger and the Redis boards that must mirror it."""

    ledger: PostgresLedger
    board: RedisLeaderboardStore
    seasons: LedgerSeasons  # the live season of the boards other than global


async def apply_batches(
    consumer: UpdateConsumer,
    store: LeaderboardStore,
    broadcaster: TopTenPusher,
    stats: ApplyStats,
    redeliveries: RedeliveryCounter | None = None,
    ledgered: Ledgered | None = None,
    metrics: Metrics | None = None,
) -> None:
    """Run until the consumer stops; acknowledge an update only once recorded and applied."""
    forgetting = Forgetting(consumer.confirm_acks, store.forget)
    applier = _BatchApplier(store, broadcaster, stats, forgetting, ledgered, metrics)
    confirming = asyncio.create_task(forgetting.run())
    try:
        async for taken in consumer.batches():
            batch = taken
            if redeliveries is not None:
                batch = await _set_aside_repeat_offenders(taken, redeliveries, stats)
            boards = await applier.apply(batch)
            # Once, at the end: a message can carry updates of both kinds, applied and
            # dead-lettered, and must not be settled before the last of them is.
            await consumer.acknowledge(taken)
            stats.batches += 1
            stats.last_batch_at = time.time()
            if boards and metrics is not None and batch:
                metrics.board_changed(max(d.update.accepted_at for d in batch))
            for board in boards:
                await applier.broadcast(board)
    finally:
        confirming.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await confirming
    await forgetting.finish()


class _BatchApplier:
    def __init__(
        self,
        store: LeaderboardStore,
        broadcaster: TopTenPusher,
        stats: ApplyStats,
        forgetting: Forgetting,
        ledgered: Ledgered | None,
        metrics: Metrics | None = None,
    ) -> None:
        self._forgetting = forgetting
        self._store = store
        self._broadcaster = broadcaster
        self._stats = stats
        self._ledgered = ledgered
        self._metrics = metrics
        self._summary = AppliedSummary()

    async def apply(self, batch: Sequence[Delivery]) -> list[Leaderboard]:
        """Record and apply the batch; if refused, isolate and dead-letter the culprits.

        Returns the new top of each board the batch changed. Acknowledging is the caller's: a
        delivery applied here may share its message with one dead-lettered later in the batch.
        """
        if not batch:
            return []
        try:
            boards = await self._record_and_apply(batch)
        except Exception:
            if len(batch) == 1:
                with bound_request_id(batch[0].update.request_id):
                    log.exception("update %s cannot be applied", batch[0].update.message_id)
                    await batch[0].dead_letter("the store refused it")
                self._stats.dead_lettered += 1
                return []
            log.warning("a batch of %d was refused; applying its updates one by one", len(batch))
            newest: dict[str, Leaderboard] = {}
            for delivery in batch:
                newest.update((b.board_id, b) for b in await self.apply([delivery]))
            return list(newest.values())
        self._stats.updates += len(batch)
        self._summary.note(len(batch))
        _log_applied(batch)
        if self._metrics is not None:
            self._metrics.observe_applied([d.update for d in batch])
        return boards

    async def _record_and_apply(self, batch: Sequence[Delivery]) -> list[Leaderboard]:
        updates = [d.update for d in batch]
        # Never fewer than the batch brings: under load the ids drain as fast as they come.
        forget = self._forgetting.take(1000 + 2 * len(updates))
        entry_ids: dict[str, int] | None = None
        if self._ledgered is not None and updates:
            updates = await self._claimed(updates)
        if self._ledgered is not None and updates:
            # The ledger first, every board's updates at once: an update Redis holds is always
            # one PostgreSQL holds too.
            ledger = self._ledgered.ledger
            ids = await until_available(lambda: ledger.record(updates))
            entry_ids = dict(zip((u.message_id for u in updates), ids, strict=True))
        # Every board's share in one round trip: the cost of a batch does not grow with the
        # number of boards it touches.
        batches = [
            BoardBatch(self._store_of(board, season), group, _sequences(group, entry_ids))
            for (board, season), group in _by_board(updates).items()
        ]
        outcomes = await until_available(lambda: self._store.apply_boards(batches, forget))
        changed = []
        for share, outcome in zip(batches, outcomes, strict=True):
            if isinstance(outcome, BoardOutOfSync):
                outcome = await self._rebuild_then_apply(share)
            if outcome is not None:
                changed.append(outcome)
        return changed

    async def _claimed(self, updates: list[ScoreUpdate]) -> list[ScoreUpdate]:
        """The updates to record: not those whose web node gave up on the publish (it answered
        503, and a late message must not reach the ledger, which a rebuild would count)."""
        assert self._ledgered is not None
        board = self._ledgered.board
        cancelled = await until_available(lambda: board.claim([u.message_id for u in updates]))
        for update in updates:
            if update.message_id in cancelled:
                with bound_request_id(update.request_id):
                    log.info("update %s was cancelled by its web node: dropped", update.message_id)
        return [u for u in updates if u.message_id not in cancelled]

    def _store_of(self, board: Board, season: int) -> LeaderboardStore:
        if board.board_id == GLOBAL_BOARD_ID:
            return self._store
        return self._store.for_board(board, season)

    async def _rebuild_then_apply(self, share: BoardBatch) -> Leaderboard | None:
        """Redis lost a board season the ledger holds: rebuild it (one worker does), then apply."""
        if self._ledgered is None:
            raise BoardOutOfSync()
        ledger, seasons, store = self._ledgered.ledger, self._ledgered.seasons, share.store
        assert isinstance(store, RedisLeaderboardStore)
        while True:
            try:
                rebuilt = await until_available(
                    lambda: ensure_board_matches_ledger(ledger, store, seasons)
                )
            except SeasonClosed:  # a late update: the ledger's season counts it
                board = store.board.board_id
                log.info("board %s season %d is archived: not applied", board, store.season)
                return None
            if rebuilt is not None:
                await self.broadcast(rebuilt)
            try:
                return await until_available(lambda: store.apply(share.updates, share.sequences))
            except BoardOutOfSync:
                continue

    async def broadcast(self, board: Leaderboard) -> None:
        try:
            await self._broadcaster.broadcast_top10(board)
            self._stats.broadcasts += 1
        except Exception:  # a lost broadcast is superseded by the next one; never stop applying
            log.exception("broadcast of version %d failed", board.version)


def _by_board(updates: Sequence[ScoreUpdate]) -> dict[tuple[Board, int], list[ScoreUpdate]]:
    """The updates by board and season, in order, `global`'s first.

    The board is rebuilt from what each update carries: it is applied as its board was when
    it was accepted, whatever has become of the board since.
    """
    groups: dict[tuple[Board, int], list[ScoreUpdate]] = {(GLOBAL_BOARD, 1): []}
    for update in updates:
        if update.board_id == GLOBAL_BOARD_ID:
            groups[(GLOBAL_BOARD, 1)].append(update)
        else:
            board = Board(update.board_id, update.board_id, update.operator, update.order)
            groups.setdefault((board, update.season), []).append(update)
    return groups


def _sequences(
    updates: Sequence[ScoreUpdate], entry_ids: dict[str, int] | None
) -> list[int] | None:
    """The updates' ledger entry ids, which order their ties; None without a ledger."""
    return None if entry_ids is None else [entry_ids[u.message_id] for u in updates]


async def _set_aside_repeat_offenders(
    batch: Sequence[Delivery], redeliveries: RedeliveryCounter, stats: ApplyStats
) -> list[Delivery]:
    """Dead-letter messages that came back too often: each return is a worker that died on it."""
    returned = [d.update.message_id for d in batch if d.redelivered]
    exhausted = await until_available(lambda: redeliveries.exhausted(returned))
    kept = []
    for delivery in batch:
        if delivery.update.message_id in exhausted:
            with bound_request_id(delivery.update.request_id):
                log.error("update %s was redelivered too often", delivery.update.message_id)
                await delivery.dead_letter("redelivered too often")
            stats.dead_lettered += 1
        else:
            kept.append(delivery)
    return kept


class AppliedSummary:
    """Counts what was applied and says so in one INFO line every SUMMARY_INTERVAL_SECONDS."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._since = clock()
        self._updates = self._batches = 0

    def note(self, updates: int) -> None:
        self._updates += updates
        self._batches += 1
        elapsed = self._clock() - self._since
        if elapsed >= SUMMARY_INTERVAL_SECONDS:
            log.info(
                "applied %d updates in %d batches in the last %.0fs",
                self._updates,
                self._batches,
                elapsed,
                extra={"updates": self._updates, "batches": self._batches},
            )
            self._since, self._updates, self._batches = self._clock(), 0, 0


def _log_applied(batch: Sequence[Delivery]) -> None:
    """At DEBUG, one line per update, with the id of the request that queued it."""
    if not log.isEnabledFor(logging.DEBUG):
        return
    for delivery in batch:
        update = delivery.update
        log.debug(
            "applied update %s: %s +%d",
            update.message_id,
            update.user_id,
            update.increment,
            extra={"request_id": update.request_id, "message_id": update.message_id},
        )
