"""The JSON bodies every endpoint answers with: {"status": "success"|"error", …}."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web


def success(
    payload: Mapping[str, Any], status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.json_response({"status": "success", **payload}, status=status, headers=headers)


def error(status: int, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.json_response(
        {"status": "error", "message": message}, status=status, headers=headers
    )
