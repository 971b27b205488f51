"""HTTP endpoints: POST /api/score/update and the liveness probe."""

from __future__ import annotations

from aiohttp import web

from scoreboard.config import MAX_SAFE_INTEGER
from scoreboard.errors import Forbidden, QueueUnavailable
from scoreboard.models import ScoreUpdate
from scoreboard.validation import parse_score_update
from scoreboard.web import responses
from scoreboard.web.keys import PUBLISHER, SCORE_RATE_LIMITER, SETTINGS, STORE, VERIFIER


async def post_score_update(request: web.Request) -> web.Response:
    """Queue an increment of the caller's own score; answer with the score it leads to."""
    app = request.app
    identity = app[VERIFIER].verify_authorization_header(request.headers.get("Authorization"))
    await app[SCORE_RATE_LIMITER].check(identity.subject)
    body = parse_score_update(await request.read(), app[SETTINGS].max_score_increment)
    if body.user_id != identity.subject:
        raise Forbidden("A user can only update their own score")

    update = ScoreUpdate.new(body.user_id, identity.username, body.score_increment)
    store = app[STORE]
    new_score = await store.reserve(update, MAX_SAFE_INTEGER)
    try:
        await app[PUBLISHER].publish(update)
    except QueueUnavailable:
        # The broker may or may not hold the message; release() settles it either way.
        if await store.release(update):
            raise
    return responses.success({"message": "Score update queued", "newScore": new_score})


async def healthz(request: web.Request) -> web.Response:
    """The process is up and serving requests."""
    return responses.success({"message": "ok"})


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/score/update", post_score_update)
    app.router.add_get("/healthz", healthz)
