"""/api/admin: acting on the boards, the dead letters and the rate limits (role "admin" only)."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime

import msgspec
from aiohttp import web

from scoreboard.api import models
from scoreboard.api.models import (
    Message,
    RateLimitsInForce,
    RateLimitsSaved,
    Replayed,
)
from scoreboard.api.queries import (
    DeadLetterPeekQuery,
    DeadLetterReplayQuery,
    RemoveUserQuery,
    parse_query,
)
from scoreboard.boards.model import GLOBAL_BOARD, GLOBAL_BOARD_ID, Board
from scoreboard.boards.registry import known_board
from scoreboard.boards.season_closer import start_next_season
from scoreboard.errors import BoardConflict, Forbidden, NotFound
from scoreboard.intake.auth import Identity
from scoreboard.intake.rate_policy import validate_overrides
from scoreboard.intake.request_body import read_body
from scoreboard.intake.validation import (
    checked_board_id,
    checked_user_id,
    parse_board_settings,
    parse_rate_limits,
)
from scoreboard.models import Leaderboard
from scoreboard.push.broadcast import Broadcaster
from scoreboard.queue.dead_letters import DeadLetters
from scoreboard.queue.queue_layout import QueueLayout
from scoreboard.reads.boards import board_details
from scoreboard.web import responses
from scoreboard.web.keys import (
    BOARD_CONTENTS,
    BOARDS,
    CLOSED_SEASONS,
    LEDGER,
    PUSHES,
    RATE_POLICY,
    SEASONS,
    SETTINGS,
    STORE,
    VERIFIER,
)

log = logging.getLogger("scoreboard.admin")


async def _admin(request: web.Request) -> Identity:
    identity = await request.app[VERIFIER].authenticate_header(request.headers.get("Authorization"))
    if not identity.is_admin:
        raise Forbidden("This needs a token with role admin")
    return identity


def _audit(admin: Identity, action: str, detail: object) -> None:
    log.info("admin %s: %s %s", admin.subject, action, json.dumps(detail))


async def _take_off_boards(
    request: web.Request, admin: Identity, user_ids: list[str] | None, boards: Sequence[Board]
) -> None:
    """Take users (None: everyone) off the live season of each board: recorded in the ledger
    first (if any), then each board changed and, if its top changed, pushed."""
    app = request.app
    numbers = await app[SEASONS].numbers([board.board_id for board in boards])
    live = list(zip(boards, numbers, strict=True))
    ledger = app.get(LEDGER)
    if ledger is not None:
        await ledger.record_removal(user_ids, admin.subject, [(b.board_id, n) for b, n in live])
    for board, season in live:
        top = await app[STORE].for_board(board, season).remove_users(user_ids)
        if top is not None:
            await _broadcast(app, top)
    detail = {"userIds": user_ids, "boards": [board.board_id for board in boards]}
    _audit(admin, "reset board" if user_ids is None else "remove user", detail)


async def _broadcast(app: web.Application, board: Leaderboard) -> None:
    await Broadcaster(app[PUSHES]).broadcast_top10(board)


async def remove_user(request: web.Request) -> web.Response:
    """Take one user off every board's live season, or off one board's (`?board=`); their
    next update there starts from nothing. Closed seasons keep them."""
    admin = await _admin(request)
    user_id = checked_user_id(request.match_info["userId"])
    chosen = parse_query(RemoveUserQuery, request.query).board
    if chosen is None:
        await _take_off_boards(request, admin, [user_id], await request.app[BOARDS].all())
        return responses.answer(Message(message=f"{user_id} removed from every board"))
    board = await known_board(request.app[BOARDS], chosen)
    await _take_off_boards(request, admin, [user_id], [board])
    return responses.answer(Message(message=f"{user_id} removed from board {board.board_id}"))


async def reset_board(request: web.Request) -> web.Response:
    """Take everyone off the board."""
    await _take_off_boards(request, await _admin(request), None, [GLOBAL_BOARD])
    return responses.answer(Message(message="Board reset"))


def _dead_letters(request: web.Request) -> DeadLetters:
    settings = request.app[SETTINGS]
    if not settings.rabbitmq_urls:
        raise NotFound("The single-process mode keeps no dead-letter queue")
    return DeadLetters(settings.rabbitmq_urls, QueueLayout.of(settings))


async def list_dead_letters(request: web.Request) -> web.Response:
    """The oldest dead letters (they stay in the queue)."""
    await _admin(request)
    query = parse_query(DeadLetterPeekQuery, request.query)
    letters = await _dead_letters(request).peek(query.limit)
    shown = msgspec.convert(letters, list[models.DeadLetter])
    return responses.answer(models.DeadLetters(dead_letters=shown))


async def replay_dead_letters(request: web.Request) -> web.Response:
    """Send dead letters back to the update queue (those still invalid return to it)."""
    admin = await _admin(request)
    query = parse_query(DeadLetterReplayQuery, request.query)
    moved = await _dead_letters(request).replay(query.limit)
    _audit(admin, "replay dead letters", moved)
    return responses.answer(Replayed(message=f"{moved} dead letters replayed", replayed=moved))


async def get_rate_limits(request: web.Request) -> web.Response:
    """The configured limits per tier and the runtime overrides in force."""
    await _admin(request)
    policy = request.app[RATE_POLICY]
    return responses.answer(
        RateLimitsInForce(configured=policy.configured(), overrides=await policy.overrides())
    )


async def put_rate_limits(request: web.Request) -> web.Response:
    """Replace the runtime overrides ({tier: limit}, "default" for everyone else; {} clears)."""
    admin = await _admin(request)
    overrides = validate_overrides(parse_rate_limits(await read_body(request)))
    await request.app[RATE_POLICY].replace_overrides(overrides)
    _audit(admin, "set rate limit overrides", overrides)
    return responses.answer(
        RateLimitsSaved(message="Rate limit overrides saved", overrides=overrides)
    )


def _changeable_board_id(request: web.Request) -> str:
    board_id = checked_board_id(request.match_info["boardId"])
    if board_id == GLOBAL_BOARD_ID:
        raise BoardConflict(f"The {GLOBAL_BOARD_ID} board cannot be changed or removed")
    return board_id


async def put_board(request: web.Request) -> web.Response:
    """Create a board (201) or replace its settings (200); operator and order only while empty."""
    admin = await _admin(request)
    board_id = _changeable_board_id(request)
    settings = parse_board_settings(await read_body(request))
    board = Board(
        board_id,
        settings.name,
        settings.operator,
        settings.order,
        settings.reset,
        settings.authoritative,
    )
    app = request.app
    existing = await app[BOARDS].get(board_id)
    if existing is not None and not _ranks_alike(existing, board):
        season = await app[SEASONS].current(board_id)
        if await app[BOARD_CONTENTS].user_count(board_id, season.number) > 0:
            raise BoardConflict(
                f"Board {board_id} has scores: its operator and order cannot change"
            )
    await app[BOARDS].put(board)
    if existing is None:
        await app[SEASONS].create(board_id, datetime.now(UTC))
    _audit(admin, "create board" if existing is None else "change board", dataclasses.asdict(board))
    answer = models.BoardAnswer(board=board_details(board, await app[SEASONS].current(board_id)))
    return responses.answer(answer, status=201 if existing is None else 200)


def _ranks_alike(a: Board, b: Board) -> bool:
    """Whether scores kept by `a` mean the same on `b` (a change of name or reset is harmless)."""
    return (a.operator, a.order) == (b.operator, b.order)


async def remove_board(request: web.Request) -> web.Response:
    """Remove a board and every season's scores under its keys; the ledger keeps its history."""
    admin = await _admin(request)
    board_id = _changeable_board_id(request)
    app = request.app
    if await app[BOARDS].get(board_id) is None:
        raise NotFound("No such board")
    # Its keys first: when this fails half way, the board is still listed and a retry finishes.
    await app[BOARD_CONTENTS].remove(board_id)
    await app[CLOSED_SEASONS].forget(board_id)
    await app[SEASONS].forget(board_id)
    await app[BOARDS].delete(board_id)
    _audit(admin, "remove board", board_id)
    return responses.answer(Message(message=f"Board {board_id} removed"))


async def reset_board_season(request: web.Request) -> web.Response:
    """Close a board's live season now; a worker's season closer archives it."""
    admin = await _admin(request)
    board = await known_board(request.app[BOARDS], request.match_info["boardId"])
    if board.board_id == GLOBAL_BOARD_ID:
        raise BoardConflict(
            f"The {GLOBAL_BOARD_ID} board has no seasons: POST /api/admin/board/reset empties it"
        )
    seasons = request.app[SEASONS]
    live = (await seasons.current(board.board_id)).number
    now = datetime.now(UTC)
    pushes = Broadcaster(request.app[PUSHES])
    if await start_next_season(seasons, pushes, board.board_id, live, now, now) is None:
        raise BoardConflict("The season changed meanwhile; try again")
    _audit(admin, "close season", {"boardId": board.board_id, "season": live})
    return responses.answer(
        models.SeasonReset(f"Season {live} closed", board.board_id, live, live + 1)
    )
