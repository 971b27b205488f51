"""The JSON bodies every endpoint answers with: {"status": "success"|"error", …}."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from aiohttp import web


def success(
    payload: Mapping[str, Any], status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    return _json({"status": "success", **payload}, status, headers)


def error(status: int, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    return _json({"status": "error", "message": message}, status, headers)


def _json(body: Mapping[str, Any], status: int, headers: Mapping[str, str] | None) -> web.Response:
    return web.Response(
        body=orjson.dumps(body),
        status=status,
        headers=headers,
        content_type="application/json",
        charset="utf-8",
    )
