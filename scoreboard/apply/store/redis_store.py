"""The board in Redis: every change is one Lua script, so it is atomic across processes."""

from __future__ import annotations

import copy
import json
import logging
import math
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources
from typing import Any, TypeVar

import redis.asyncio as redis
from redis.commands.core import AsyncScript
from redis.exceptions import LockNotOwnedError, NoScriptError, ResponseError

from scoreboard.apply.store import (
    DEDUPLICATION_TTL_SECONDS,
    FORGET_GRACE_SECONDS,
    BoardBatch,
    LeaderboardStore,
    Reservation,
)
from scoreboard.apply.store.rankings import (
    BoardPage,
    RankedEntry,
    UserRank,
    ranked,
    user_rank_around,
)
from scoreboard.boards.keys import IN_SYNC_KEY, board_prefix, current_season_key, season_prefix
from scoreboard.boards.model import GLOBAL_BOARD, GLOBAL_BOARD_ID, Board
from scoreboard.errors import (
    ApiError,
    BoardOutOfSync,
    RateLimited,
    ScoreOverflow,
    SeasonUnknown,
    StoreUnavailable,
    UpdateRejected,
)
from scoreboard.group_commit import GroupCommit
from scoreboard.intake.rate_limit import RateWindow
from scoreboard.models import TOP_N, Leaderboard, LeaderboardEntry, ScoreUpdate, UserStanding
from scoreboard.redis_errors import TRANSIENT_REDIS_ERRORS, redis_errors_as_unavailable

REBUILD_LOCK_SECONDS = 300
REBUILD_LOCK_POLL_SECONDS = 0.2
T = TypeVar("T")

log = logging.getLogger(__name__)


def load_script(client: redis.Redis, name: str, *shared: str) -> AsyncScript:
    """The script `name`, after the `shared` files whose local functions it calls."""
    folder = resources.files("scoreboard.apply.store").joinpath("lua")
    source = "".join(folder.joinpath(part).read_text() for part in (*shared, name))
    return client.register_script(source)


def decode_top(encoded: bytes | str | None, version: int) -> Leaderboard:
    """Turn the JSON the apply script stores ([[userId, username, score], …]) into a Leaderboard."""
    rows = json.loads(encoded) if encoded else []
    # cjson encodes an empty Lua table as {}.
    entries = tuple(
        LeaderboardEntry(user_id=user, username=name, score=int(score))
        for user, name, score in (rows if isinstance(rows, list) else [])
    )
    return Leaderboard(version=version, top=entries)


def _decode_rows(flat: Sequence[bytes], first_rank: int) -> tuple[RankedEntry, ...]:
    """Rows a read script returns flat, as userId, username, score, userId, …"""
    triples = zip(flat[0::3], flat[1::3], flat[2::3], strict=True)
    return ranked(((u.decode(), n.decode(), int(s)) for u, n, s in triples), first_rank)


class RedisLeaderboardStore:
    """LeaderboardStore on Redis, every key under `prefix` so deployments can share a server."""

    def __init__(
        self,
        client: redis.Redis,
        prefix: str,
        *,
        ledger_backed: bool = False,
        observe_group: Callable[[int], None] | None = None,
        group_wait_seconds: float = 0.0,
        forget_grace_seconds: int = FORGET_GRACE_SECONDS,
        board: Board = GLOBAL_BOARD,
        season: int = 1,
    ) -> None:
        self._client = client
        self._prefix = prefix
        self.board, self.season = board, season
        self._sign = -1 if board.order == "desc" else 1
        self._keys = _Keys(prefix, board.board_id, season)
        self._siblings: dict[tuple[str, int], RedisLeaderboardStore] = {}
        self._forget_grace = forget_grace_seconds
        # With a ledger, a board's season must have been rebuilt from it (or have started
        # empty) before anything is applied, and every board's live season number is recorded.
        self._ledger_backed = ledger_backed
        self._reserve = load_script(client, "reserve.lua")
        self._admissions: GroupCommit[_Admission, Reservation] = GroupCommit(
            self._admit_group, observe_size=observe_group, linger_seconds=group_wait_seconds
        )
        self._release = load_script(client, "release.lua")
        self._apply = load_script(
            client, "apply.lua", "publish_top.lua", "forget_applied.lua", "server_id.lua"
        )
        self._server = load_script(client, "server.lua", "server_id.lua")
        self._synced = load_script(client, "synced.lua", "server_id.lua")
        self._mark_synced = load_script(client, "mark_synced.lua", "server_id.lua")
        self._forget = load_script(client, "forget.lua", "forget_applied.lua")
        self._claim = load_script(client, "claim.lua")
        self._remove = load_script(client, "remove.lua", "publish_top.lua")
        self._board_page = load_script(client, "board_page.lua", "read_rows.lua")
        self._keep = load_script(client, "keep_season.lua")
        self._user_rank = load_script(client, "user_rank.lua", "read_rows.lua")

    def for_board(self, board: Board, season: int = 1) -> RedisLeaderboardStore:
        """The store of `board`'s `season`, sharing this one's connections and group commits."""
        if _same_rules(board, self.board) and season == self.season:
            return self
        sibling = self._siblings.get((board.board_id, season))
        if sibling is None or not _same_rules(board, sibling.board):
            sibling = copy.copy(self)
            sibling.board, sibling.season = board, season
            sibling._sign = -1 if board.order == "desc" else 1
            sibling._keys = _Keys(self._prefix, board.board_id, season)
            sibling._siblings = {}
            self._siblings[(board.board_id, season)] = sibling
        return sibling

    async def reserve(
        self, update: ScoreUpdate, max_total: int, limit: RateWindow | None = None
    ) -> int:
        return (await self.admit(update, max_total, limit)).new_score

    async def admit(
        self, update: ScoreUpdate, max_total: int, limit: RateWindow | None = None
    ) -> Reservation:
        # Admissions arriving together share one script call (group commit), whatever their board.
        admission = _Admission(
            self._keys.board_prefix,
            # With a ledger every board's live season number is recorded: absent means lost.
            "2" if self._ledger_backed and self._keys.seasonal == "1" else self._keys.seasonal,
            update.message_id,
            update.user_id,
            update.increment,
            self.board.operator,
            self._sign,
            max_total,
            limit,
        )
        return await self._admissions.submit(admission)

    async def count_refused(self, user_id: str, limit: RateWindow) -> None:
        await self._admissions.submit(_Admission("", "0", "", user_id, 0, "", -1, 0, limit))

    async def _admit_group(self, group: Sequence[_Admission]) -> list[Reservation | ApiError]:
        # One cap per call: a group holds one deployment's updates, whose cap is the same.
        caps = [a.max_total for a in group if a.operator == "incr"]
        args: list[str | int] = [min(caps, default=0), self._keys.rate_window]
        for admission in group:
            limit = admission.limit
            args += [admission.prefix, admission.seasonal, admission.message_id]
            args += [admission.user_id, admission.value]
            args += [admission.operator, admission.sign]
            args += ["", 0] if limit is None else [limit.amount, limit.milliseconds]
        async with redis_errors_as_unavailable():
            reply = await self._reserve(keys=[self._keys.accept_order], args=args)
        return [
            _admitted(int(code), int(value), int(season), int(order))
            for code, value, season, order in zip(
                reply[::4], reply[1::4], reply[2::4], reply[3::4], strict=True
            )
        ]

    async def release(self, update: ScoreUpdate) -> bool:
        async with redis_errors_as_unavailable():
            released = await self._release(
                keys=[self._keys.dedup(update.message_id), self._keys.accepted, self._keys.pending],
                args=[
                    update.user_id,
                    update.increment,
                    DEDUPLICATION_TTL_SECONDS,
                    update.operator,
                    update.message_id,
                ],
            )
        return bool(released)

    async def apply(
        self,
        updates: Sequence[ScoreUpdate],
        sequences: Sequence[int] | None = None,
        forget: Sequence[str] = (),
    ) -> Leaderboard | None:
        if not updates:
            await self.forget(forget)
            return None
        keys, args = self._apply_call(updates, sequences, forget)
        try:
            async with redis_errors_as_unavailable():
                result = await self._apply(keys=keys, args=args)
        except ResponseError as exc:
            raise UpdateRejected(str(exc)) from exc
        outcome = self._applied(result, updates)
        if isinstance(outcome, BoardOutOfSync):
            raise outcome
        return outcome

    async def apply_boards(
        self, batches: Sequence[BoardBatch], forget: Sequence[str] = ()
    ) -> list[Leaderboard | None | BoardOutOfSync]:
        outcomes: list[Leaderboard | None | BoardOutOfSync] = [None] * len(batches)
        filled = [index for index, batch in enumerate(batches) if batch.updates]
        if not filled:
            await self.forget(forget)
            return outcomes
        stores = {index: _redis_store(batches[index].store) for index in filled}
        calls = [
            stores[index]._apply_call(
                batches[index].updates,
                batches[index].sequences,
                forget if index == filled[0] else (),
            )
            for index in filled
        ]
        replies = await self._apply_pipelined(calls)
        for index, reply in zip(filled, replies, strict=True):
            if isinstance(reply, ResponseError):
                raise UpdateRejected(str(reply))
            outcomes[index] = stores[index]._applied(reply, batches[index].updates)
        return outcomes

    async def _apply_pipelined(
        self, calls: Sequence[tuple[list[str], list[str | int]]]
    ) -> list[Any]:
        """Run apply.lua once per call, every call in one round trip. A call the server answers
        NOSCRIPT (it restarted, or was flushed) did not run: the script is loaded and only
        those calls run again."""
        replies: list[Any] = [None] * len(calls)
        waiting = list(range(len(calls)))
        for _ in range(2):
            async with redis_errors_as_unavailable():
                async with self._client.pipeline(transaction=False) as pipe:
                    for index in waiting:
                        keys, args = calls[index]
                        pipe.evalsha(self._apply.sha, len(keys), *keys, *args)
                    results = await pipe.execute(raise_on_error=False)
                missing = []
                for index, result in zip(waiting, results, strict=True):
                    if isinstance(result, TRANSIENT_REDIS_ERRORS):
                        # READONLY (a primary demoted under this connection), OOM: an outage,
                        # never a refusal of the updates.
                        raise result
                    if isinstance(result, NoScriptError):
                        missing.append(index)
                    else:
                        replies[index] = result
                if not missing:
                    return replies
                self._apply.sha = await self._client.script_load(self._apply.script)
            waiting = missing
        raise UpdateRejected("apply.lua could not be loaded")

    def _apply_call(
        self,
        updates: Sequence[ScoreUpdate],
        sequences: Sequence[int] | None,
        forget: Sequence[str],
    ) -> tuple[list[str], list[str | int]]:
        """The keys and arguments of apply.lua for these updates of this store's board."""
        keys = self._keys
        require_synced = "1" if self._ledger_backed else "0"
        args: list[str | int] = [keys.dedup(""), DEDUPLICATION_TTL_SECONDS, TOP_N, require_synced]
        # Folded into this call: forgetting costs no round trip of its own under load.
        season = self.season if keys.seasonal == "1" else ""
        args += [self._forget_grace, self.board.operator, self._sign, season, len(forget), *forget]
        for index, update in enumerate(updates):
            sequence: int | str = "" if sequences is None else sequences[index]
            if update.accepted_seq is not None:
                sequence = update.accepted_seq
            args += [update.message_id, update.user_id, update.username, update.increment, sequence]
        return keys.for_apply(), args

    def _applied(
        self, result: Sequence[Any], updates: Sequence[ScoreUpdate]
    ) -> Leaderboard | None | BoardOutOfSync:
        """What apply.lua's reply means: the new top, None (unchanged), or a rebuild needed."""
        if int(result[0]) == -2:
            return BoardOutOfSync()
        if int(result[0]) < 0:
            bad = updates[int(result[1])]
            raise UpdateRejected(f"inconsistent board state for user {bad.user_id!r}")
        version = int(result[1])
        if version == 0:
            return None
        return self._decode_top(result[2], version)

    async def claim(self, message_ids: Sequence[str]) -> set[str]:
        """Claim updates a worker is about to record in the ledger (claim.lua); returns the ids
        of those a web node cancelled, which must be neither recorded nor applied."""
        cancelled: set[str] = set()
        for ids in _chunks(message_ids, 5000):
            async with redis_errors_as_unavailable():
                answers = await self._claim(
                    args=[self._keys.dedup(""), DEDUPLICATION_TTL_SECONDS, *ids]
                )
            cancelled.update(i for i, answer in zip(ids, answers, strict=True) if not answer)
        return cancelled

    async def forget(self, message_ids: Sequence[str]) -> None:
        for ids in _chunks(message_ids, 5000):
            async with redis_errors_as_unavailable():
                await self._forget(args=[self._keys.dedup(""), self._forget_grace, *ids])

    async def leaderboard(self) -> Leaderboard:
        async with redis_errors_as_unavailable():
            version, encoded = await self._client.mget([self._keys.version, self._keys.top])
        return self._decode_top(encoded, int(version or 0))

    def _decode_top(self, encoded: bytes | str | None, version: int) -> Leaderboard:
        top = decode_top(encoded, version)
        return Leaderboard(top.version, top.top, self.board.board_id, self.season)

    async def board_page(self, offset: int, limit: int) -> BoardPage:
        keys = self._keys
        async with redis_errors_as_unavailable():
            reply = await self._board_page(
                keys=[keys.board, keys.names, keys.version],
                args=[offset, offset + limit - 1, self._sign],
            )
        return BoardPage(int(reply[0]), int(reply[1]), _decode_rows(reply[2:], offset + 1))

    async def user_rank(self, user_id: str, around: int) -> UserRank | None:
        keys = self._keys
        async with redis_errors_as_unavailable():
            reply = await self._user_rank(
                keys=[keys.board, keys.members, keys.names, keys.version],
                args=[user_id, around, self._sign],
            )
        if len(reply) == 2:
            return None
        window = _decode_rows(reply[3:], int(reply[2]) + 1)
        return user_rank_around(int(reply[0]), int(reply[1]), window, user_id)

    async def remove_users(self, user_ids: Sequence[str] | None) -> Leaderboard | None:
        """Take these users (None: everyone) off the board; the new top if it changed."""
        if user_ids is not None and not user_ids:
            return None
        keys = self._keys
        async with redis_errors_as_unavailable():
            result = await self._remove(
                keys=[
                    *(keys.board, keys.members, keys.names, keys.accepted, keys.version),
                    *(keys.top, keys.latest),
                ],
                args=[TOP_N, self._sign, *(user_ids or [])],
            )
        version = int(result[1])
        return None if version == 0 else self._decode_top(result[2], version)

    async def server_id(self) -> str:
        """The answering Redis server's run id: another one after a restart or a failover."""
        async with redis_errors_as_unavailable():
            return _text(await self._server())

    async def synced(self) -> bool:
        """True when the board matched the ledger on the server answering now.

        False when it never did, when Redis lost it, and after a restart or a failover: the
        server answering may lack writes the one before acknowledged.
        """
        async with redis_errors_as_unavailable():
            return bool(await self._synced(keys=[self._keys.synced]))

    async def mark_synced(self, server_id: str = "") -> None:
        """Record that the board matches the ledger on `server_id` ('' the server answering).

        StoreUnavailable, nothing recorded, when another server answers now: what was written on
        `server_id` may not have reached it.
        """
        async with redis_errors_as_unavailable():
            marked = await self._mark_synced(keys=[self._keys.synced], args=[server_id])
        if not marked:
            raise StoreUnavailable()

    def live_only_keys(self) -> list[str]:
        """What only a live season needs: dropped once the season is archived."""
        keys = self._keys
        # `started` and `ended`: the season's times, written when it was moved (seasons.py).
        live = [keys.accepted, keys.pending, keys.seq, keys.top, keys.synced, keys.rebuild_lock]
        live.append(keys.latest)
        return [*live, f"{keys.prefix}started", f"{keys.prefix}ended"]

    async def keep_in_place(self, closed_key: str, started_at: str, ended_at: str) -> bool:
        """Record this season in the hash `closed_key` and drop its live-only keys, keeping its
        rows where they are; False when it was recorded already."""
        keys = self._keys
        async with redis_errors_as_unavailable():
            kept = await self._keep(
                keys=[closed_key, keys.board, keys.version],
                args=[self.season, started_at, ended_at, *self.live_only_keys()],
            )
        return bool(kept)

    async def user_count(self) -> int:
        """Users with a score on the board."""
        async with redis_errors_as_unavailable():
            return int(await self._client.zcard(self._keys.board))

    @asynccontextmanager
    async def rebuild_lock(self, seconds: float = REBUILD_LOCK_SECONDS) -> AsyncIterator[None]:
        """Held by one process at a time across the deployment, for at most `seconds`.

        redis-py's Lock releases with one compare-and-delete script: a holder whose time ran
        out never deletes the lock another process has taken since.
        """
        lock = self._client.lock(
            self._keys.rebuild_lock,
            timeout=seconds,
            sleep=REBUILD_LOCK_POLL_SECONDS,
            thread_local=False,
        )
        async with redis_errors_as_unavailable():
            await lock.acquire()
        try:
            yield
        finally:
            async with redis_errors_as_unavailable():
                try:
                    await lock.release()
                except LockNotOwnedError:
                    log.warning(
                        "the rebuild lock expired after %gs, before its holder was done;"
                        " another process may have rebuilt at the same time",
                        seconds,
                    )

    async def standings(self) -> list[UserStanding]:
        """Every user on the board, highest first."""
        async with redis_errors_as_unavailable():
            rows = await self._client.zrange(self._keys.board, 0, -1, withscores=True)
            names = await self._client.hgetall(self._keys.names)
        usernames = {_text(user): _text(name) for user, name in names.items()}
        standings = []
        for row in rows:
            member, negated = row[0], row[1]
            sequence, _, user = _text(member).partition(":")
            username = usernames.get(user, user)
            value = self._sign * int(float(negated))
            standings.append(UserStanding(user, username, value, int(sequence)))
        return standings

    async def restore(
        self,
        standings: Sequence[UserStanding],
        applied: Sequence[tuple[str, int]],
        version_floor: int,
    ) -> Leaderboard:
        """Replace the board with `standings`; remember `applied` (message id, seconds to keep).

        The new version exceeds both the stored one and `version_floor`, so clients that saw
        the lost board still take the restored one.
        """
        keys = self._keys
        ranked = sorted(standings, key=lambda s: (self._sign * s.score, s.sequence))
        top = [[s.user_id, s.username, str(s.score)] for s in ranked[:TOP_N]]
        # The same text apply.lua stores, so its next run sees no change where there is none.
        encoded = json.dumps(top, separators=(",", ":"), ensure_ascii=False)
        async with redis_errors_as_unavailable():
            version = max(int(await self._client.get(keys.version) or 0), version_floor) + 1
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.delete(keys.board, keys.members, keys.names, keys.top, keys.synced)
                pipe.delete(keys.latest)
                for group in _chunks(ranked, 5000):
                    members: dict[Any, Any] = {
                        s.user_id: f"{s.sequence:016d}:{s.user_id}" for s in group
                    }
                    pipe.zadd(keys.board, {members[s.user_id]: self._sign * s.score for s in group})
                    pipe.hset(keys.members, mapping=members)
                    names: dict[Any, Any] = {s.user_id: s.username for s in group}
                    pipe.hset(keys.names, mapping=names)
                    latest: dict[Any, Any] = {
                        s.user_id: s.latest_set for s in group if s.latest_set is not None
                    }
                    if latest:
                        pipe.hset(keys.latest, mapping=latest)
                pipe.set(keys.seq, max((s.sequence for s in ranked), default=0))
                pipe.set(keys.version, version)
                pipe.set(keys.top, encoded)
                await pipe.execute()
            for ids in _chunks(applied, 5000):
                async with self._client.pipeline(transaction=False) as pipe:
                    for message_id, keep_seconds in ids:
                        pipe.set(keys.dedup(message_id), "applied", ex=max(1, keep_seconds))
                    await pipe.execute()
        return self._decode_top(encoded, version)


@dataclass(frozen=True)
class _Admission:
    """One update (or, with operator '', one refused request) waiting for its group's script."""

    prefix: str  # its board's keys
    seasonal: str  # "1", "2": the board has seasons, the script picks the live one
    message_id: str
    user_id: str
    value: int
    operator: str
    sign: int
    max_total: int
    limit: RateWindow | None


def _admitted(code: int, value: int, season: int, order: int) -> Reservation | ApiError:
    """An admission's new total, season and order, or the refusal reserve.lua answered with."""
    if code == 0:
        return Reservation(value, season, order or None)
    if code == 1:
        return ScoreOverflow()
    if code == 3:
        return SeasonUnknown()
    return RateLimited(retry_after=max(1, math.ceil(value / 1000)))


def _redis_store(store: LeaderboardStore) -> RedisLeaderboardStore:
    if not isinstance(store, RedisLeaderboardStore):
        raise TypeError(f"a board of the Redis store expected, got {type(store).__name__}")
    return store


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class _Keys:
    """Names of every Redis key the store uses: the board's season's, and the deployment's."""

    def __init__(self, deployment: str, board_id: str = GLOBAL_BOARD_ID, season: int = 1) -> None:
        prefix = season_prefix(deployment, board_id, season)
        self.prefix = prefix
        self.seasonal = "0" if board_id == GLOBAL_BOARD_ID else "1"
        self.board_prefix = (
            prefix if board_id == GLOBAL_BOARD_ID else board_prefix(deployment, board_id)
        )
        self.live_season = current_season_key(deployment, board_id)
        self.pending = f"{prefix}pending"
        self.board = f"{prefix}board"
        self.members = f"{prefix}members"
        self.names = f"{prefix}names"
        self.accepted = f"{prefix}accepted"
        self.seq = f"{prefix}seq"
        self.version = f"{prefix}version"
        self.top = f"{prefix}top"
        self.synced = f"{prefix}{IN_SYNC_KEY}"
        self.rebuild_lock = f"{prefix}rebuild-lock"
        # Message ids are unique across boards, and a user's rate limit counts every board.
        self._dedup_prefix = f"{deployment}msg:"
        self.rate_window = f"{deployment}rate:score-update:"
        self.accept_order = f"{deployment}accept-order"
        self.latest = f"{prefix}latest"

    def for_apply(self) -> list[str]:
        return [
            *(self.board, self.members, self.names, self.seq, self.version, self.top),
            *(self.synced, self.pending, self.live_season, self.latest),
        ]

    def dedup(self, message_id: str) -> str:
        return self._dedup_prefix + message_id


def _same_rules(a: Board, b: Board) -> bool:
    """Whether a store kept for `b` serves `a`: the same board, operator and order."""
    return (a.board_id, a.operator, a.order) == (b.board_id, b.operator, b.order)
