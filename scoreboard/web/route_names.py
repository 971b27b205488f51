"""How logs and metrics name a request: by the route it matched, never by the path it sent."""

from __future__ import annotations

from aiohttp import web

from scoreboard.ops.metrics import UNMATCHED_ROUTE


def route_template(request: web.Request) -> str:
    """The route as registered (`/api/users/{userId}/rank`), never the path as requested."""
    resource = request.match_info.route.resource
    return UNMATCHED_ROUTE if resource is None else resource.canonical
