"""HTTP endpoints: posting a score, reading the board, the liveness probe; and the route table."""

from __future__ import annotations

from aiohttp import web

from scoreboard.errors import Forbidden, NotFound
from scoreboard.idempotency import IdempotentRequest
from scoreboard.models import ScoreUpdate
from scoreboard.request_ids import current_request_id
from scoreboard.validation import checked_user_id, parse_score_update
from scoreboard.web import responses
from scoreboard.web.demo import get_demo
from scoreboard.web.keys import (
    RATE_POLICY,
    READ_RATE_LIMITER,
    SCORE_RATE_LIMITER,
    SETTINGS,
    STORE,
    SUBMISSION,
    VERIFIER,
)
from scoreboard.web.openapi import get_openapi
from scoreboard.web.page import live_page, static_file
from scoreboard.web.read_params import parse_around, parse_page_query
from scoreboard.web.request_body import read_body


async def post_score_update(request: web.Request) -> web.Response:
    """Queue an increment of the caller's own score; answer with the score it leads to."""
    app = request.app
    identity = await app[VERIFIER].authenticate_header(request.headers.get("Authorization"))
    limit = await app[RATE_POLICY].limit_for(identity.tier)
    await app[SCORE_RATE_LIMITER].check(identity.subject, limit)
    body = parse_score_update(await read_body(request), app[SETTINGS].max_score_increment)
    if body.user_id != identity.subject:
        raise Forbidden("A user can only update their own score")

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
    accepted = await app[SUBMISSION].submit(update, idempotent, priority)
    return responses.success(
        {"message": "Score update queued", "newScore": accepted.new_score},
        headers={"Idempotent-Replayed": "true"} if accepted.replayed else None,
    )


async def get_leaderboard(request: web.Request) -> web.Response:
    """A page of the board: `limit` users from rank `offset + 1` on, with version and total."""
    await _admit_reader(request)
    query = parse_page_query(request.query)
    page = await request.app[STORE].board_page(query.offset, query.limit)
    return responses.success(page.to_json())


async def get_user_rank(request: web.Request) -> web.Response:
    """A user's rank and score with up to `around` neighbours on each side."""
    await _admit_reader(request)
    user_id = checked_user_id(request.match_info["userId"])
    around = parse_around(request.query)
    standing = await request.app[STORE].user_rank(user_id, around)
    if standing is None:
        raise NotFound("No score for this user")
    return responses.success(standing.to_json())


async def _admit_reader(request: web.Request) -> None:
    """Any valid token may read; each reader has their own READ_RATE_LIMIT."""
    app = request.app
    identity = await app[VERIFIER].authenticate_header(request.headers.get("Authorization"))
    await app[READ_RATE_LIMITER].check(identity.subject)


async def healthz(request: web.Request) -> web.Response:
    """The process is up and serving requests."""
    return responses.success({"message": "ok"})


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/score/update", post_score_update)
    app.router.add_get("/api/leaderboard", get_leaderboard)
    app.router.add_get("/api/users/{userId}/rank", get_user_rank)
    app.router.add_get("/api/openapi.json", get_openapi)
    app.router.add_get("/api/demo", get_demo)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/", live_page)
    app.router.add_get("/static/{name}", static_file)
