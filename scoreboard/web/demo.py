"""The demo token of the single-process mode: logged for the operator, offered to the page."""

from __future__ import annotations

from aiohttp import web

from scoreboard.api.models import DemoToken
from scoreboard.config import Mode, Settings
from scoreboard.errors import NotFound
from scoreboard.intake.auth import issue_token
from scoreboard.web import responses
from scoreboard.web.keys import DEMO_TOKEN

DEMO_USER = "demo"
DEMO_USERNAME = "Demo Player"
DEMO_TOKEN_TTL_SECONDS = 24 * 60 * 60


def issue_demo_token(settings: Settings) -> str | None:
    """A token for the demo user, only when this process made up its own JWT_SECRET.

    That secret exists in this process alone and nothing here outlives it: the token lets
    whoever opens the page try the service out as the demo user, and nothing more. With a
    configured secret, or in the distributed mode, there is no demo token.
    """
    if settings.mode is not Mode.SINGLE_PROCESS or not settings.jwt_secret_generated:
        return None
    return issue_token(settings.jwt_secret.value, DEMO_USER, DEMO_USERNAME, DEMO_TOKEN_TTL_SECONDS)


async def get_demo(request: web.Request) -> web.Response:
    """GET /api/demo: the demo user and token, or 404 where there is none."""
    token = request.app.get(DEMO_TOKEN)
    if token is None:
        raise NotFound("No demo token: this is not the single-process mode with a generated secret")
    return responses.answer(DemoToken(user_id=DEMO_USER, username=DEMO_USERNAME, token=token))
