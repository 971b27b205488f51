"""A user's applied updates from the ledger, newest first: on global, or on any board."""

from __future__ import annotations

from aiohttp import web

from scoreboard.api.models import BoardHistoryEntry, BoardHistoryPage, HistoryEntry, HistoryPage
from scoreboard.api.queries import HistoryQuery, parse_query
from scoreboard.apply.ledger.postgres import LedgerEntry, PostgresLedger
from scoreboard.boards.model import GLOBAL_BOARD_ID
from scoreboard.boards.registry import known_board
from scoreboard.errors import Forbidden, NotFound
from scoreboard.intake.validation import checked_user_id
from scoreboard.web import responses
from scoreboard.web.keys import BOARDS, LEDGER, VERIFIER


async def get_history(request: web.Request) -> web.Response:
    """A page of the caller's own history; `nextBefore` fetches the next, older page."""
    user_id, ledger, query = await _own_history(request)
    entries = await ledger.history(user_id, query.limit + 1, query.before, GLOBAL_BOARD_ID)
    page = entries[: query.limit]
    return responses.answer(
        HistoryPage(
            user_id=user_id,
            entries=[_entry(entry) for entry in page],
            next_before=_next_before(entries, query.limit),
        )
    )


async def get_board_history(request: web.Request) -> web.Response:
    """A page of the caller's own history on one board, every season."""
    board = await known_board(request.app[BOARDS], request.match_info["boardId"])
    user_id, ledger, query = await _own_history(request)
    entries = await ledger.history(user_id, query.limit + 1, query.before, board.board_id)
    page = entries[: query.limit]
    return responses.answer(
        BoardHistoryPage(
            user_id=user_id,
            board_id=board.board_id,
            entries=[_board_entry(entry) for entry in page],
            next_before=_next_before(entries, query.limit),
        )
    )


async def _own_history(request: web.Request) -> tuple[str, PostgresLedger, HistoryQuery]:
    identity = await request.app[VERIFIER].authenticate_header(request.headers.get("Authorization"))
    user_id = checked_user_id(request.match_info["userId"])
    if user_id != identity.subject:
        raise Forbidden("A user can only read their own history")
    ledger = request.app.get(LEDGER)
    if ledger is None:
        raise NotFound("Score history needs DATABASE_URL; this deployment keeps none")
    return user_id, ledger, parse_query(HistoryQuery, request.query)


def _next_before(entries: list[LedgerEntry], limit: int) -> str | None:
    """The id to pass as `before` for the next page, when one more entry than a page came."""
    return str(entries[limit - 1].entry_id) if len(entries) > limit else None


def _board_entry(entry: LedgerEntry) -> BoardHistoryEntry:
    return BoardHistoryEntry(
        entry_id=str(entry.entry_id),
        message_id=entry.message_id,
        username=entry.username,
        posted=entry.increment,
        score=entry.resulting_score,
        season=entry.season,
        accepted_at=entry.accepted_at.isoformat(),
        applied_at=entry.applied_at.isoformat(),
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
