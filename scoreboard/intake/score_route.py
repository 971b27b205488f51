"""POST /api/score/update: authenticate, limit, validate, then hand the update to submission."""

from __future__ import annotations

from aiohttp import web

from scoreboard.api.models import ScoreUpdateAccepted
from scoreboard.errors import Forbidden
from scoreboard.intake.queueing import queue_and_answer, refusals_counted
from scoreboard.intake.rate_limit import rate_window
from scoreboard.intake.request_body import read_body
from scoreboard.intake.validation import parse_score_update
from scoreboard.models import ScoreUpdate
from scoreboard.ops.request_ids import current_request_id
from scoreboard.web.keys import IN_FLIGHT, RATE_POLICY, SETTINGS, VERIFIER


async def post_score_update(request: web.Request) -> web.Response:
    """Queue an increment of the caller's own score; answer with the score it leads to."""
    # Shed before spending anything (a token check, a Redis call) on an update over the limit.
    with request.app[IN_FLIGHT].admit(request.transport):
        return await _queue_update(request)


async def _queue_update(request: web.Request) -> web.Response:
    app = request.app
    identity = await app[VERIFIER].authenticate_header(request.headers.get("Authorization"))
    limit = rate_window(await app[RATE_POLICY].limit_for(identity.tier))
    async with refusals_counted(app, identity.subject, limit):
        body = parse_score_update(await read_body(request), app[SETTINGS].max_score_increment)
        if body.user_id != identity.subject:
            raise Forbidden("A user can only update their own score")
    update = ScoreUpdate.new(
        body.user_id, identity.username, body.score_increment, request_id=current_request_id()
    )
    return await queue_and_answer(
        request,
        identity,
        update,
        limit,
        lambda new_score: ScoreUpdateAccepted(message="Score update queued", new_score=new_score),
    )
