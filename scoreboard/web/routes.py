"""Every HTTP route of the web process, in one table, in the order a score update travels."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from scoreboard.intake.score_route import post_score_update
from scoreboard.ops.routes import get_metrics, get_readyz, healthz
from scoreboard.reads.board import get_leaderboard, get_user_rank
from scoreboard.reads.history import get_history
from scoreboard.web import admin_routes
from scoreboard.web.demo import get_demo
from scoreboard.web.openapi import get_openapi
from scoreboard.web.page import live_page, static_file

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

ROUTES: tuple[tuple[str, str, Handler], ...] = (
    ("POST", "/api/score/update", post_score_update),
    ("GET", "/api/leaderboard", get_leaderboard),
    ("GET", "/api/users/{userId}/rank", get_user_rank),
    ("GET", "/api/users/{userId}/history", get_history),
    ("DELETE", "/api/admin/users/{userId}", admin_routes.remove_user),
    ("POST", "/api/admin/board/reset", admin_routes.reset_board),
    ("GET", "/api/admin/dead-letters", admin_routes.list_dead_letters),
    ("POST", "/api/admin/dead-letters/replay", admin_routes.replay_dead_letters),
    ("GET", "/api/admin/rate-limits", admin_routes.get_rate_limits),
    ("PUT", "/api/admin/rate-limits", admin_routes.put_rate_limits),
    ("GET", "/api/openapi.json", get_openapi),
    ("GET", "/api/demo", get_demo),
    ("GET", "/healthz", healthz),
    ("GET", "/readyz", get_readyz),
    ("GET", "/metrics", get_metrics),
    ("GET", "/", live_page),
    ("GET", "/static/{name}", static_file),
)


def add_routes(app: web.Application) -> None:
    for method, path, handler in ROUTES:
        app.router.add_route(method, path, handler)
