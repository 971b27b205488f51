"""HTTP endpoints: POST /api/score/update and the liveness probe."""

from __future__ import annotations

from aiohttp import web

from scoreboard.errors import Forbidden
from scoreboard.idempotency import IdempotentRequest
from scoreboard.models import ScoreUpdate
from scoreboard.validation import parse_score_update
from scoreboard.web import responses
from scoreboard.web.keys import SCORE_RATE_LIMITER, SETTINGS, SUBMISSION, VERIFIER


async def post_score_update(request: web.Request) -> web.Response:
    """Queue an increment of the caller's own score; answer with the score it leads to."""
    app = request.app
    identity = await app[VERIFIER].authenticate_header(request.headers.get("Authorization"))
    await app[SCORE_RATE_LIMITER].check(identity.subject)
    body = parse_score_update(await request.read(), app[SETTINGS].max_score_increment)
    if body.user_id != identity.subject:
        raise Forbidden("A user can only update their own score")

    key = request.headers.get("Idempotency-Key")
    idempotent = (
        None
        if key is None
        else IdempotentRequest.from_header(key, body.user_id, body.score_increment)
    )
    update = ScoreUpdate.new(body.user_id, identity.username, body.score_increment)
    accepted = await app[SUBMISSION].submit(update, idempotent)
    return responses.success(
        {"message": "Score update queued", "newScore": accepted.new_score},
        headers={"Idempotent-Replayed": "true"} if accepted.replayed else None,
    )


async def healthz(request: web.Request) -> web.Response:
    """The process is up and serving requests."""
    return responses.success({"message": "ok"})


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/score/update", post_score_update)
    app.router.add_get("/healthz", healthz)
