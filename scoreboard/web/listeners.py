"""Which port serves what: with OPS_PORT set, /metrics and /readyz there and nowhere else."""

from __future__ import annotations

from aiohttp import web

from scoreboard.errors import NotFound
from scoreboard.web.keys import SETTINGS
from scoreboard.web.middlewares import Handler
from scoreboard.web.route_names import route_template

# With OPS_PORT set these are served on it alone, and it serves nothing else but the liveness
# probe, which answers on every port.
OPS_ROUTES = frozenset({"/metrics", "/readyz"})
EVERY_PORT_ROUTES = frozenset({"/healthz"})


@web.middleware
async def split_ports(request: web.Request, handler: Handler) -> web.StreamResponse:
    """404 for an operations route on the public port, and for any other route on OPS_PORT."""
    ops_port = request.app[SETTINGS].ops_port
    if ops_port is not None:
        route = route_template(request)
        on_ops_port = arrival_port(request) == ops_port
        if route not in EVERY_PORT_ROUTES and (route in OPS_ROUTES) != on_ops_port:
            raise NotFound()
    return await handler(request)


def arrival_port(request: web.Request) -> int | None:
    """The local port that accepted the request's connection; None once it is gone."""
    transport = request.transport
    sockname = None if transport is None else transport.get_extra_info("sockname")
    if isinstance(sockname, tuple) and len(sockname) >= 2:
        return int(sockname[1])
    return None
