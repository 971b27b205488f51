"""GET /api/users/{userId}/history: a user's applied updates from the ledger, newest first."""

from __future__ import annotations

from aiohttp import web

from scoreboard.api.models import HistoryEntry, HistoryPage
from scoreboard.api.queries import HistoryQuery, parse_query
from scoreboard.apply.ledger.postgres import LedgerEntry
from scoreboard.boards.model import GLOBAL_BOARD_ID
from scoreboard.errors import Forbidden, NotFound
from scoreboard.intake.validation import checked_user_id
from scoreboard.web import responses
from scoreboard.web.keys import LEDGER, VERIFIER


async def get_history(request: web.Request) -> web.Response:
    """A page of the caller's own history; `nextBefore` fetches the next, older page."""
    identity = await request.app[VERIFIER].authenticate_header(request.headers.get("Authorization"))
    user_id = checked_user_id(request.match_info["userId"])
    if user_id != identity.subject:
        raise Forbidden("A user can only read their own history")
    ledger = request.app.get(LEDGER)
    if ledger is None:
        raise NotFound("Score history needs DATABASE_URL; this deployment keeps none")
    query = parse_query(HistoryQuery, request.query)
    entries = await ledger.history(user_id, query.limit + 1, query.before, GLOBAL_BOARD_ID)
    page = entries[: query.limit]
    return responses.answer(
        HistoryPage(
            user_id=user_id,
            entries=[_entry(entry) for entry in page],
            next_before=str(page[-1].entry_id) if len(entries) > query.limit else None,
        )
    )


def _entry(entry: LedgerEntry) -> HistoryEntry:
    return HistoryEntry(
        entry_id=str(entry.entry_id),
        message_id=entry.message_id,
        username=entry.username,
        increment=entry.increment,
        score=entry.resulting_score,
        accepted_at=entry.accepted_at.isoformat(),
        applied_at=entry.applied_at.isoformat(),
    )
