"""GET /api/leaderboard and GET /api/users/{userId}/rank: the board as the store holds it."""

from __future__ import annotations

from aiohttp import web

from scoreboard.api.models import BoardSeasonPage, BoardUserRank
from scoreboard.api.queries import BoardQuery, RankQuery, parse_query
from scoreboard.boards.model import GLOBAL_BOARD_ID, Board
from scoreboard.boards.registry import known_board
from scoreboard.errors import NotFound
from scoreboard.intake.validation import checked_user_id
from scoreboard.web import responses
from scoreboard.web.keys import BOARDS, READ_RATE_LIMITER, SEASONS, STORE, VERIFIER


async def get_leaderboard(request: web.Request) -> web.Response:
    """A page of the board: `limit` users from rank `offset + 1` on, with version and total."""
    await admit_reader(request)
    query = parse_query(BoardQuery, request.query)
    page = await request.app[STORE].board_page(query.offset, query.limit)
    return responses.answer(page)


async def get_user_rank(request: web.Request) -> web.Response:
    """A user's rank and score with up to `around` neighbours on each side."""
    await admit_reader(request)
    user_id = checked_user_id(request.match_info["userId"])
    query = parse_query(RankQuery, request.query)
    standing = await request.app[STORE].user_rank(user_id, query.around)
    if standing is None:
        raise NotFound("No score for this user")
    return responses.answer(standing)


async def get_board_leaderboard(request: web.Request) -> web.Response:
    """A page of a board's live season, as GET /api/leaderboard gives global's."""
    await admit_reader(request)
    board = await known_board(request.app[BOARDS], request.match_info["boardId"])
    query = parse_query(BoardQuery, request.query)
    season = await _live_season(request.app, board)
    store = request.app[STORE].for_board(board, season)
    page = await store.board_page(query.offset, query.limit)
    return responses.answer(
        BoardSeasonPage(page.version, page.total, page.entries, board.board_id, season)
    )


async def get_board_user_rank(request: web.Request) -> web.Response:
    """A user's place on a board's live season, as GET /api/users/{userId}/rank gives global's."""
    await admit_reader(request)
    board = await known_board(request.app[BOARDS], request.match_info["boardId"])
    user_id = checked_user_id(request.match_info["userId"])
    query = parse_query(RankQuery, request.query)
    season = await _live_season(request.app, board)
    standing = await request.app[STORE].for_board(board, season).user_rank(user_id, query.around)
    if standing is None:
        raise NotFound("No score for this user on this board")
    return responses.answer(
        BoardUserRank(
            standing.version,
            standing.total,
            standing.user,
            standing.above,
            standing.below,
            board.board_id,
            season,
        )
    )


async def _live_season(app: web.Application, board: Board) -> int:
    if board.board_id == GLOBAL_BOARD_ID:  # it has one season, forever
        return 1
    return (await app[SEASONS].current(board.board_id)).number


async def admit_reader(request: web.Request) -> None:
    """Any valid token may read; each reader has their own READ_RATE_LIMIT."""
    app = request.app
    identity = await app[VERIFIER].authenticate_header(request.headers.get("Authorization"))
    await app[READ_RATE_LIMITER].check(identity.subject)
