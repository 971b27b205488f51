"""Every HTTP route of the web process: the declared endpoints, each with its handler."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from scoreboard.api.endpoints import ENDPOINTS
from scoreboard.intake.board_score_route import post_board_score
from scoreboard.intake.score_route import post_score_update
from scoreboard.ops.routes import get_metrics, get_readyz, healthz
from scoreboard.reads.board import (
    get_board_leaderboard,
    get_board_user_rank,
    get_leaderboard,
    get_user_rank,
)
from scoreboard.reads.boards import get_board, list_boards
from scoreboard.reads.history import get_board_history, get_history
from scoreboard.reads.seasons import get_season_leaderboard, list_seasons
from scoreboard.web import admin_routes
from scoreboard.web.api_docs import api_docs_page
from scoreboard.web.demo import get_demo
from scoreboard.web.openapi import get_asyncapi, get_openapi
from scoreboard.web.page import live_page
from scoreboard.web.static_files import static_file

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# By operationId of scoreboard/api/endpoints.py, in the order a score update travels.
HANDLERS: dict[str, Handler] = {
    "postScoreUpdate": post_score_update,
    "getLeaderboard": get_leaderboard,
    "getUserRank": get_user_rank,
    "postBoardScore": post_board_score,
    "getBoardLeaderboard": get_board_leaderboard,
    "getBoardUserRank": get_board_user_rank,
    "getBoardHistory": get_board_history,
    "listSeasons": list_seasons,
    "getSeasonLeaderboard": get_season_leaderboard,
    "getHistory": get_history,
    "listBoards": list_boards,
    "getBoard": get_board,
    "putBoard": admin_routes.put_board,
    "removeBoard": admin_routes.remove_board,
    "resetBoardSeason": admin_routes.reset_board_season,
    "removeUser": admin_routes.remove_user,
    "resetBoard": admin_routes.reset_board,
    "listDeadLetters": admin_routes.list_dead_letters,
    "replayDeadLetters": admin_routes.replay_dead_letters,
    "getRateLimits": admin_routes.get_rate_limits,
    "putRateLimits": admin_routes.put_rate_limits,
    "getOpenapi": get_openapi,
    "getApiDocs": api_docs_page,
    "getAsyncapi": get_asyncapi,
    "getDemo": get_demo,
    "getHealthz": healthz,
    "getReadyz": get_readyz,
    "getMetrics": get_metrics,
    "getLivePage": live_page,
    "getStaticFile": static_file,
}


def add_routes(app: web.Application) -> None:
    """Register every declared endpoint; a declaration without a handler stops start-up."""
    declared = {endpoint.operation for endpoint in ENDPOINTS}
    if declared != set(HANDLERS):
        raise RuntimeError(f"endpoints without handlers or undeclared: {declared ^ set(HANDLERS)}")
    for endpoint in ENDPOINTS:
        app.router.add_route(endpoint.method, endpoint.path, HANDLERS[endpoint.operation])
