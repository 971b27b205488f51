"""Creating a load run's boards through the admin API, as an operator would."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence

from bench.endpoint import Endpoint
from bench.http_connection import ConnectionLost, HttpConnection

ADMIN_BOARD_PATH = "/api/admin/boards/{board_id}"
# incr/desc/never: every accepted increment adds up, so the final scores can be checked exactly.
BOARD_SETTINGS = {"operator": "incr", "order": "desc", "reset": "never", "authoritative": False}
CREATED, UNCHANGED = 201, 200


class BoardSetupFailed(Exception):
    """A board could not be created; the message says which and what the service answered."""


async def create_boards(
    endpoint: Endpoint, admin_token: str, board_ids: Sequence[str], timeout: float
) -> int:
    """PUT each board (an existing one with the same settings is kept); return how many are new."""
    created = 0
    connection = await HttpConnection.open(endpoint, timeout)
    try:
        for board_id in board_ids:
            if not connection.reusable:
                connection.close()
                connection = await HttpConnection.open(endpoint, timeout)
            body = json.dumps({"name": f"Load run {board_id}", **BOARD_SETTINGS}).encode()
            path = endpoint.base_path + ADMIN_BOARD_PATH.format(board_id=board_id)
            request = (
                f"PUT {path} HTTP/1.1\r\nHost: {endpoint.host_header}\r\n"
                f"Authorization: Bearer {admin_token}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            ).encode() + body
            try:
                async with asyncio.timeout(timeout):
                    response = await connection.request(request)
            except (TimeoutError, ConnectionLost) as exc:
                raise BoardSetupFailed(f"creating board {board_id}: {exc or 'no answer'}") from None
            if response.status not in (CREATED, UNCHANGED):
                answer = response.body[:200].decode("utf-8", "replace")
                raise BoardSetupFailed(
                    f"creating board {board_id}: {response.status} {answer}".strip()
                )
            created += response.status == CREATED
    finally:
        connection.close()
    return created
