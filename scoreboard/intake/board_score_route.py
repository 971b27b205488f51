"""POST /api/boards/{boardId}/scores: a score on any board, by its user or by a game server."""

from __future__ import annotations

from aiohttp import web

from scoreboard.api.models import BoardScoreAccepted
from scoreboard.boards.model import Board
from scoreboard.boards.registry import known_board
from scoreboard.errors import Forbidden, InvalidRequest
from scoreboard.intake import identities
from scoreboard.intake.auth import Identity
from scoreboard.intake.queueing import queue_and_answer, refusals_counted
from scoreboard.intake.rate_limit import rate_window
from scoreboard.intake.request_body import read_body
from scoreboard.intake.validation import BoardScoreRequest, checked_board_score, parse_board_score
from scoreboard.models import ScoreUpdate
from scoreboard.ops.request_ids import current_request_id
from scoreboard.web.keys import BOARDS, IN_FLIGHT, RATE_POLICY, SETTINGS, VERIFIER


async def post_board_score(request: web.Request) -> web.Response:
    """Queue a score on a board; answer with the user's value on it once applied."""
    with request.app[IN_FLIGHT].admit(request.transport):
        return await _queue_board_score(request)


async def _queue_board_score(request: web.Request) -> web.Response:
    app = request.app
    settings = app[SETTINGS]
    identity = await app[VERIFIER].authenticate_header(request.headers.get("Authorization"))
    limit = rate_window(await app[RATE_POLICY].limit_for(identity.tier))
    async with refusals_counted(app, identity.subject, limit):
        board = await known_board(app[BOARDS], request.match_info["boardId"])
        cap = max(settings.max_score, settings.max_score_increment)
        body = parse_board_score(await read_body(request), cap)
        value = checked_board_score(
            body.score, board.operator, settings.max_score_increment, settings.max_score
        )
        username = _username(identity, board, body)
    update = ScoreUpdate.new(
        body.user_id, username, value, request_id=current_request_id(), board=board
    )
    return await queue_and_answer(
        request,
        identity,
        update,
        limit,
        lambda new_score: BoardScoreAccepted(message="Score update queued", new_score=new_score),
    )


def _username(identity: Identity, board: Board, body: BoardScoreRequest) -> str:
    """Who may post what: a user their own score, a service anyone's, with the name to show."""
    if identity.is_service:
        if body.username is None:
            raise InvalidRequest("username is required with a service token")
        return identities.display_name(body.username, body.user_id)
    if board.authoritative:
        raise Forbidden("Only a service token may post to this board")
    if body.user_id != identity.subject:
        raise Forbidden("A user can only update their own score")
    if body.username is not None:
        raise InvalidRequest("username may only be sent with a service token")
    return identity.username
