"""What both score routes do around their own validation: count refusals, then queue and answer."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from aiohttp import web

from scoreboard.api.models import Wire
from scoreboard.errors import ApiError
from scoreboard.intake.auth import Identity
from scoreboard.intake.idempotency import IdempotentRequest
from scoreboard.intake.rate_limit import RateWindow
from scoreboard.models import ScoreUpdate
from scoreboard.web import responses
from scoreboard.web.keys import SETTINGS, SUBMISSION


@asynccontextmanager
async def refusals_counted(
    app: web.Application, user_id: str, limit: RateWindow
) -> AsyncIterator[None]:
    """A request refused in the block still counts against `limit`: it cost as much.

    Over the limit, the answer is 429 whatever else is wrong with the request.
    """
    try:
        yield
    except ApiError:
        await app[SUBMISSION].count_refused(user_id, limit)
        raise


async def queue_and_answer(
    request: web.Request,
    identity: Identity,
    update: ScoreUpdate,
    limit: RateWindow,
    answer: Callable[[int], Wire],
) -> web.Response:
    """Queue `update` (at most once per Idempotency-Key); answer with the newScore it leads to."""
    app = request.app
    key = request.headers.get("Idempotency-Key")
    idempotent = (
        None
        if key is None
        else IdempotentRequest.from_header(key, update.user_id, update.increment, update.board_id)
    )
    priority = app[SETTINGS].priority_of(identity.tier)
    # The rate limit is counted in the same Redis script call that reserves the newScore.
    accepted = await app[SUBMISSION].submit(update, idempotent, priority, limit)
    return responses.answer(
        answer(accepted.new_score),
        headers={"Idempotent-Replayed": "true"} if accepted.replayed else None,
    )
