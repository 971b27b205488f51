"""Which season of a board is live and since when, and moving a board on to its next season.

In Redis, under the board's prefix: `season` is the live number (absent: 1; set when the board is
created), `season-started` its start (ISO 8601), `s<n>:pending` the ids of the updates
accepted in season n and not applied yet (`s<n>:pending-lost`: Redis lost them, see
RedisSeasons.restore), `s<n>:started` and `s<n>:ended` a closed season's times (until it is
archived) and `archived` the highest season archived. With a ledger they are also recorded in
PostgreSQL, and restored from it when Redis loses them (scoreboard/apply/ledger/seasons.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import redis.asyncio as redis

from scoreboard.apply.store.memory_store import MemoryLeaderboardStore
from scoreboard.apply.store.redis_store import load_script
from scoreboard.boards.keys import IN_SYNC_KEY, board_prefix, current_season_key, season_prefix
from scoreboard.boards.model import GLOBAL_BOARD_ID
from scoreboard.redis_errors import redis_errors_as_unavailable

FIRST_SEASON = 1
_PENDING_LOST = "pending-lost"


@dataclass(frozen=True)
class Season:
    number: int
    started_at: datetime | None  # None: not recorded (`global`, or a board from before seasons)


@dataclass(frozen=True)
class SeasonEnd:
    """A season that is no longer live, as the move left it for the archive."""

    board_id: str
    number: int
    started_at: datetime | None
    ended_at: datetime


@dataclass(frozen=True)
class SeasonsRecord:
    """A board's seasons as recorded outside Redis: what a Redis that lost them is given back."""

    live: Season
    archived: int  # the highest season archived (0: none)
    closing: tuple[SeasonEnd, ...]  # ended and not archived yet, oldest first


class Seasons(Protocol):
    async def current(self, board_id: str) -> Season: ...

    async def numbers(self, board_ids: Sequence[str]) -> list[int]:
        """The live season number of each board, in one read."""
        ...

    async def begin(self, board_id: str, at: datetime) -> None:
        """The live season starts `at`, unless a start is recorded already (a board from
        before seasons)."""
        ...

    async def create(self, board_id: str, at: datetime) -> None:
        """A new board: its first season starts `at`, empty."""
        ...

    async def forget(self, board_id: str) -> None: ...

    async def move(
        self, board_id: str, season: int, ended_at: datetime, next_starts_at: datetime
    ) -> int | None:
        """End `season` and start the next, if `season` is still live: the version the next
        season starts at, or None when another caller moved it first."""
        ...

    async def pending(self, board_id: str, season: int) -> int | None:
        """Updates accepted in the season and neither applied nor cancelled yet; None when
        that is not known (Redis lost it)."""
        ...

    async def ended(self, board_id: str, season: int) -> SeasonEnd | None:
        """A moved season's times, until it is archived."""
        ...

    async def archived(self, board_id: str) -> int:
        """The highest season of the board that is archived (0: none)."""
        ...

    async def mark_archived(self, board_id: str, season: int) -> None: ...


def _started_key(prefix: str, board_id: str) -> str:
    return f"{board_prefix(prefix, board_id)}season-started"


def _season(
    board_id: str, number: bytes | str | None, started: bytes | str | None
) -> Season | None:
    if board_id == GLOBAL_BOARD_ID:
        return Season(FIRST_SEASON, None)
    return None if number is None else Season(int(number), _time(started))


def _time(raw: bytes | str | None) -> datetime | None:
    return datetime.fromisoformat(_text(raw)) if raw else None


class RedisSeasons:
    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._client = client
        self._prefix = prefix
        self._move = load_script(client, "move_season.lua", "server_id.lua")
        self._create = load_script(client, "create_seasons.lua", "server_id.lua")
        self._restore = load_script(client, "restore_season.lua")

    async def current(self, board_id: str) -> Season:
        [season] = await self.read([board_id])
        return season or Season(FIRST_SEASON, None)

    async def numbers(self, board_ids: Sequence[str]) -> list[int]:
        return [FIRST_SEASON if s is None else s.number for s in await self.read(board_ids)]

    async def read(self, board_ids: Sequence[str]) -> list[Season | None]:
        """Each board's live season, in one read; None where no number is recorded (a board
        from before seasons, or lost with Redis). `global` has season 1, always."""
        keys = []
        for board_id in board_ids:
            keys += [
                current_season_key(self._prefix, board_id),
                _started_key(self._prefix, board_id),
            ]
        async with redis_errors_as_unavailable():
            values = await self._client.mget(keys) if keys else []
        pairs = zip(board_ids, values[::2], values[1::2], strict=True)
        return [_season(board_id, number, started) for board_id, number, started in pairs]

    async def begin(self, board_id: str, at: datetime) -> None:
        # NX: when two nodes create the same board at once, the first start stands.
        async with redis_errors_as_unavailable():
            await self._client.set(_started_key(self._prefix, board_id), at.isoformat(), nx=True)

    async def create(self, board_id: str, at: datetime) -> None:
        first = season_prefix(self._prefix, board_id, FIRST_SEASON)
        keys = [current_season_key(self._prefix, board_id), _started_key(self._prefix, board_id)]
        keys.append(f"{first}{IN_SYNC_KEY}")
        async with redis_errors_as_unavailable():
            await self._create(keys=keys, args=[FIRST_SEASON, at.isoformat()])

    async def restore(self, board_id: str, record: SeasonsRecord) -> bool:
        """Give a Redis that lost the board's seasons (no live number) `record`; False when the
        number is there (another process restored it first, or nothing was lost).

        Which updates each season below the live one (and the live one) still awaited is lost
        with the `pending` sets: they are marked, so the closer waits for them the whole wait.
        """
        started = record.live.started_at
        args: list[str | int] = [record.live.number, "" if started is None else started.isoformat()]
        args += [record.archived, board_prefix(self._prefix, board_id), _PENDING_LOST]
        for end in record.closing:
            began = "" if end.started_at is None else end.started_at.isoformat()
            args += [end.number, began, end.ended_at.isoformat()]
        keys = [current_season_key(self._prefix, board_id), _started_key(self._prefix, board_id)]
        keys.append(self._archived_key(board_id))
        async with redis_errors_as_unavailable():
            return bool(await self._restore(keys=keys, args=args))

    async def forget(self, board_id: str) -> None:
        keys = [current_season_key(self._prefix, board_id), _started_key(self._prefix, board_id)]
        async with redis_errors_as_unavailable():
            await self._client.unlink(*keys, self._archived_key(board_id))

    async def move(
        self, board_id: str, season: int, ended_at: datetime, next_starts_at: datetime
    ) -> int | None:
        keys = [current_season_key(self._prefix, board_id), _started_key(self._prefix, board_id)]
        args: list[str | int] = [season, ended_at.isoformat(), next_starts_at.isoformat()]
        args += [board_prefix(self._prefix, board_id), IN_SYNC_KEY]
        async with redis_errors_as_unavailable():
            version = await self._move(keys=keys, args=args)
        return int(version) or None

    async def pending(self, board_id: str, season: int) -> int | None:
        prefix = season_prefix(self._prefix, board_id, season)
        async with redis_errors_as_unavailable():
            async with self._client.pipeline(transaction=False) as pipe:
                pipe.exists(f"{prefix}{_PENDING_LOST}")
                pipe.scard(f"{prefix}pending")
                lost, pending = await pipe.execute()
        return None if lost else int(pending)

    async def ended(self, board_id: str, season: int) -> SeasonEnd | None:
        prefix = season_prefix(self._prefix, board_id, season)
        async with redis_errors_as_unavailable():
            started, ended = await self._client.mget([f"{prefix}started", f"{prefix}ended"])
        ended_at = _time(ended)
        if ended_at is None:
            return None
        return SeasonEnd(board_id, season, _time(started), ended_at)

    async def archived(self, board_id: str) -> int:
        async with redis_errors_as_unavailable():
            return int(await self._client.get(self._archived_key(board_id)) or 0)

    async def mark_archived(self, board_id: str, season: int) -> None:
        # Seasons are archived in order, and marking one twice changes nothing.
        async with redis_errors_as_unavailable():
            await self._client.set(self._archived_key(board_id), season)

    def _archived_key(self, board_id: str) -> str:
        return f"{board_prefix(self._prefix, board_id)}archived"


class MemorySeasons:
    """The single process's seasons; the live numbers and pending counts are its store's."""

    def __init__(self, store: MemoryLeaderboardStore) -> None:
        self._store = store
        self._started: dict[str, datetime] = {}
        self._ended: dict[tuple[str, int], SeasonEnd] = {}
        self._archived: dict[str, int] = {}

    async def current(self, board_id: str) -> Season:
        return Season(self._store.live_season(board_id), self._started.get(board_id))

    async def numbers(self, board_ids: Sequence[str]) -> list[int]:
        return [self._store.live_season(board_id) for board_id in board_ids]

    async def begin(self, board_id: str, at: datetime) -> None:
        self._started.setdefault(board_id, at)

    async def create(self, board_id: str, at: datetime) -> None:
        await self.begin(board_id, at)

    async def forget(self, board_id: str) -> None:
        self._started.pop(board_id, None)
        self._archived.pop(board_id, None)
        for key in [key for key in self._ended if key[0] == board_id]:
            del self._ended[key]

    async def move(
        self, board_id: str, season: int, ended_at: datetime, next_starts_at: datetime
    ) -> int | None:
        version = self._store.move_season(board_id, season)
        if version is not None:
            started = self._started.get(board_id)
            self._ended[(board_id, season)] = SeasonEnd(board_id, season, started, ended_at)
            self._started[board_id] = next_starts_at
        return version

    async def pending(self, board_id: str, season: int) -> int | None:
        return self._store.pending(board_id, season)

    async def ended(self, board_id: str, season: int) -> SeasonEnd | None:
        return self._ended.get((board_id, season))

    async def archived(self, board_id: str) -> int:
        return self._archived.get(board_id, 0)

    async def mark_archived(self, board_id: str, season: int) -> None:
        self._archived[board_id] = max(season, self._archived.get(board_id, 0))
        self._ended.pop((board_id, season), None)


def _text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw
