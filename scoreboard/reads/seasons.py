"""GET /api/boards/{boardId}/seasons and a closed season's standings."""

from __future__ import annotations

from aiohttp import web

from scoreboard.api import models
from scoreboard.api.queries import BoardQuery, parse_query
from scoreboard.boards.registry import known_board
from scoreboard.errors import NotFound
from scoreboard.intake.validation import checked_season
from scoreboard.reads.board import admit_reader
from scoreboard.web import responses
from scoreboard.web.keys import BOARDS, CLOSED_SEASONS


async def list_seasons(request: web.Request) -> web.Response:
    """A board's closed seasons, newest first."""
    await admit_reader(request)
    board = await known_board(request.app[BOARDS], request.match_info["boardId"])
    closed = await request.app[CLOSED_SEASONS].listed(board.board_id)
    seasons = [
        models.ClosedSeasonSummary(s.number, s.started_at, s.ended_at, s.entries) for s in closed
    ]
    return responses.answer(models.ClosedSeasonList(board.board_id, seasons))


async def get_season_leaderboard(request: web.Request) -> web.Response:
    """A page of a closed season, as it stood when it closed."""
    await admit_reader(request)
    board = await known_board(request.app[BOARDS], request.match_info["boardId"])
    season = checked_season(request.match_info["season"])
    query = parse_query(BoardQuery, request.query)
    page = await request.app[CLOSED_SEASONS].page(board, season, query.offset, query.limit)
    if page is None:
        raise NotFound("No such closed season")
    return responses.answer(
        models.ClosedSeasonPage(page.version, page.total, page.entries, board.board_id, season)
    )
