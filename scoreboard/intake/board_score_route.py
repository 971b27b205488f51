"""POST /api/boards/{boardId}/scores: a score on any board, by its user or by a game server."""

from __future__ import annotations

from aiohttp import web

from scoreboard.api.models import BoardScoreAccepted
from scoreboard.boards.model import Board
from scoreboard.boards.registry import known_board
from scoreboard.errors import ApiError, Forbidden, InvalidRequest
from scoreboard.intake import identities
from scoreboard.intake.auth import Identity
from scoreboard.intake.idempotency import IdempotentRequest
from scoreboard.intake.rate_limit import rate_window
from scoreboard.intake.request_body import read_body
from scoreboard.intake.validation import BoardScoreRequest, checked_board_score, parse_board_score
from scoreboard.models import ScoreUpdate
from scoreboard.ops.request_ids import current_request_id
from scoreboard.web import responses
from scoreboard.web.keys import BOARDS, IN_FLIGHT, RATE_POLICY, SETTINGS, SUBMISSION, VERIFIER


async def post_board_score(request: web.Request) -> web.Response:
    """Queue a score on a board; answer with the user's value on it once applied."""
    with request.app[IN_FLIGHT].admit(request.transport):
        return await _queue_board_score(request)


async def _queue_board_score(request: web.Request) -> web.Response:
    app = request.app
    settings = app[SETTINGS]
    identity = await app[VERIFIER].authenticate_header(request.headers.get("Authorization"))
    limit = rate_window(await app[RATE_POLICY].limit_for(identity.tier))
    try:
        board = await known_board(request.app[BOARDS], request.match_info["boardId"])
        cap = max(settings.max_score, settings.max_score_increment)
        body = parse_board_score(await read_body(request), cap)
        value = checked_board_score(
            body.score, board.operator, settings.max_score_increment, settings.max_score
        )
        username = _username(identity, board, body)
    except ApiError:
        # A refused request costs as much as an accepted one: it counts against the limit too.
        await app[SUBMISSION].count_refused(identity.subject, limit)
        raise
    key = request.headers.get("Idempotency-Key")
    idempotent = (
        None
        if key is None
        else IdempotentRequest.from_header(key, body.user_id, value, board.board_id)
    )
    update = ScoreUpdate.new(
        body.user_id, username, value, request_id=current_request_id(), board=board
    )
    priority = settings.priority_of(identity.tier)
    accepted = await app[SUBMISSION].submit(update, idempotent, priority, limit)
    return responses.answer(
        BoardScoreAccepted(message="Score update queued", new_score=accepted.new_score),
        headers={"Idempotent-Replayed": "true"} if accepted.replayed else None,
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
