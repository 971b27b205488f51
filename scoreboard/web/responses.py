"""The JSON bodies every endpoint answers with: {"status": "success"|"error", …}."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
import orjson
from aiohttp import web

_SUCCESS = b'{"status":"success",'
_encode = msgspec.json.Encoder().encode


def answer(
    body: msgspec.Struct, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    """A declared body (scoreboard/api/models.py), with `"status": "success"` in front."""
    encoded = _encode(body)
    # A declared body is a JSON object with at least one field: `{"…` becomes `{"status":…,"…`.
    return _response(_SUCCESS + encoded[1:], status, headers)


def success(
    payload: Mapping[str, Any], status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    """An answer of no declared shape (/readyz, the document itself)."""
    return _response(orjson.dumps({"status": "success", **payload}), status, headers)


def error(status: int, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    return _response(orjson.dumps({"status": "error", "message": message}), status, headers)


def _response(body: bytes, status: int, headers: Mapping[str, str] | None) -> web.Response:
    return web.Response(
        body=body,
        status=status,
        headers=headers,
        content_type="application/json",
        charset="utf-8",
    )
