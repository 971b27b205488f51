"""GET /api/users/{userId}/history: a user's applied updates from the ledger, newest first."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from scoreboard.apply.ledger.postgres import LedgerEntry
from scoreboard.errors import Forbidden, NotFound
from scoreboard.intake.validation import checked_user_id
from scoreboard.reads.params import query_integer
from scoreboard.web import responses
from scoreboard.web.keys import LEDGER, VERIFIER

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
MAX_ENTRY_ID = 2**63 - 1  # PostgreSQL's bigint


async def get_history(request: web.Request) -> web.Response:
    """A page of the caller's own history; `nextBefore` fetches the next, older page."""
    identity = await request.app[VERIFIER].authenticate_header(request.headers.get("Authorization"))
    user_id = checked_user_id(request.match_info["userId"])
    if user_id != identity.subject:
        raise Forbidden("A user can only read their own history")
    ledger = request.app.get(LEDGER)
    if ledger is None:
        raise NotFound("Score history needs DATABASE_URL; this deployment keeps none")
    limit = query_integer(request.query, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    before = query_integer(request.query, "before", 0, 1, MAX_ENTRY_ID)
    cursor = before or None
    entries = await ledger.history(user_id, limit + 1, cursor)
    page = entries[:limit]
    return responses.success(
        {
            "userId": user_id,
            "entries": [_entry_json(entry) for entry in page],
            "nextBefore": str(page[-1].entry_id) if len(entries) > limit else None,
        }
    )


def _entry_json(entry: LedgerEntry) -> dict[str, Any]:
    return {
        "entryId": str(entry.entry_id),
        "messageId": entry.message_id,
        "username": entry.username,
        "increment": entry.increment,
        "score": entry.resulting_score,
        "acceptedAt": entry.accepted_at.isoformat(),
        "appliedAt": entry.applied_at.isoformat(),
    }
