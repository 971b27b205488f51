"""POST /api/score/update: authenticate, limit, validate, then hand the update to submission."""

from __future__ import annotations

from aiohttp import web

from scoreboard.api.models import ScoreUpdateAccepted
from scoreboard.errors import ApiError, Forbidden
from scoreboard.intake.idempotency import IdempotentRequest
from scoreboard.intake.rate_limit import rate_window
from scoreboard.intake.request_body import read_body
from scoreboard.intake.validation import parse_score_update
from scoreboard.models import ScoreUpdate
from scoreboard.ops.request_ids import current_request_id
from scoreboard.web import responses
from scoreboard.web.keys import (
    IN_FLIGHT,
    RATE_POLICY,
    SETTINGS,
    SUBMISSION,
    VERIFIER,
)


async def post_score_update(request: web.Request) -> web.Response:
    """Queue an increment of the caller's own score; answer with the score it leads to."""
    # Shed before spending anything (a token check, a Redis call) on an update over the limit.
    with request.app[IN_FLIGHT].admit(request.transport):
        return await _queue_update(request)


async def _queue_update(request: web.Request) -> web.Response:
    app = request.app
    identity = await app[VERIFIER].authenticate_header(request.headers.get("Authorization"))
    limit = rate_window(await app[RATE_POLICY].limit_for(identity.tier))
    try:
        body = parse_score_update(await read_body(request), app[SETTINGS].max_score_increment)
        if body.user_id != identity.subject:
            raise Forbidden("A user can only update their own score")
    except ApiError:
        # A refused request costs as much as an accepted one, so it counts against the limit
        # too; over the limit, the answer is 429 whatever else is wrong with it.
        await app[SUBMISSION].count_refused(identity.subject, limit)
        raise

    key = request.headers.get("Idempotency-Key")
    idempotent = (
        None
        if key is None
        else IdempotentRequest.from_header(key, body.user_id, body.score_increment)
    )
    update = ScoreUpdate.new(
        body.user_id, identity.username, body.score_increment, request_id=current_request_id()
    )
    priority = app[SETTINGS].priority_of(identity.tier)
    # The rate limit is counted in the same Redis script call that reserves the newScore.
    accepted = await app[SUBMISSION].submit(update, idempotent, priority, limit)
    return responses.answer(
        ScoreUpdateAccepted(message="Score update queued", new_score=accepted.new_score),
        headers={"Idempotent-Replayed": "true"} if accepted.replayed else None,
    )
