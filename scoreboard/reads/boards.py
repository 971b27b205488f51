"""GET /api/boards and GET /api/boards/{boardId}: which boards there are, and their seasons."""

from __future__ import annotations

import msgspec
from aiohttp import web

from scoreboard.api import models
from scoreboard.boards.model import Board
from scoreboard.boards.seasons import Season
from scoreboard.errors import NotFound
from scoreboard.intake.validation import checked_board_id

# One rule for every read (any valid token, READ_RATE_LIMIT each); it lives with the board reads.
from scoreboard.reads.board import admit_reader
from scoreboard.web import responses
from scoreboard.web.keys import BOARDS, SEASONS


async def list_boards(request: web.Request) -> web.Response:
    """Every board, `global` first, each with its live season's number."""
    await admit_reader(request)
    boards = await request.app[BOARDS].all()
    seasons = await request.app[SEASONS].numbers([board.board_id for board in boards])
    listed = [_summary(board, season) for board, season in zip(boards, seasons, strict=True)]
    return responses.answer(models.BoardList(boards=listed))


async def get_board(request: web.Request) -> web.Response:
    """One board's settings and live season."""
    await admit_reader(request)
    board_id = checked_board_id(request.match_info["boardId"])
    board = await request.app[BOARDS].get(board_id)
    if board is None:
        raise NotFound("No such board")
    season = await request.app[SEASONS].current(board_id)
    return responses.answer(models.BoardAnswer(board=board_details(board, season)))


def _summary(board: Board, season: int) -> models.BoardSummary:
    return models.BoardSummary(
        board.board_id,
        board.name,
        board.operator,
        board.order,
        board.reset,
        board.authoritative,
        season,
    )


def board_details(board: Board, season: Season) -> models.BoardDetails:
    """The answer's view of a board in `season`."""
    summary = msgspec.structs.asdict(_summary(board, season.number))
    return models.BoardDetails(**summary, season_started_at=season.started_at)
