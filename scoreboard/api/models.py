"""The bodies the API takes and gives, as typed declarations; validation and the document follow.

Field names are Python's; on the wire they are camelCase (`new_score` is `newScore`). Every
success answer also carries `"status": "success"` and every error is `Error`: the document adds
the first to each answer (scoreboard/api/openapi.py), the handlers through web/responses.py.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from scoreboard.api.queries import MAX_AROUND, MAX_LIMIT
from scoreboard.boards.model import (
    BOARD_ID_PATTERN,
    MAX_BOARD_NAME_LENGTH,
    Operator,
    Order,
    Reset,
)
from scoreboard.config import MAX_SAFE_INTEGER
from scoreboard.intake.identities import MAX_USER_ID_LENGTH, MAX_USERNAME_LENGTH
from scoreboard.models import TOP_N
from scoreboard.push.broadcast import LEADERBOARD_EVENT
from scoreboard.push.subscriptions import MAX_BOARDS_PER_CLIENT

# What a pattern can say of the identity rule (scoreboard/intake/identities.py): printable, no
# separator but the space, no space at either end. The description says the rest.
USER_ID_PATTERN = r"^[^\p{C}\p{Z}](?:(?:[^\p{C}\p{Z}]| )*[^\p{C}\p{Z}])?$"
USER_ID_RULE = (
    f"1 to {MAX_USER_ID_LENGTH} printable characters after NFC normalisation (compared in NFC): "
    "no control, format, private-use, unassigned or separator characters (the space excepted, "
    "but not at either end), no invisible fillers, and no mix of scripts that look alike "
    "(Latin with Cyrillic or Greek); docs/input-rules.md states the rule"
)


def _user_id(description: str, title: str | None = None) -> Any:
    """A user id as a declared type; scoreboard.intake.identities checks the rule (NFC first,
    then the length), so the length limit is only written into the schema."""
    return Annotated[
        str,
        msgspec.Meta(
            min_length=1,
            extra_json_schema={"maxLength": MAX_USER_ID_LENGTH, "pattern": USER_ID_PATTERN},
            description=description,
            title=title,
        ),
    ]


UserId = _user_id(USER_ID_RULE, title="UserId")
Score = Annotated[int, msgspec.Meta(ge=1, le=MAX_SAFE_INTEGER)]
Count = Annotated[int, msgspec.Meta(ge=0, le=MAX_SAFE_INTEGER)]
Version = Annotated[
    int,
    msgspec.Meta(
        ge=0,
        le=MAX_SAFE_INTEGER,
        description=f"Grows by one with every change of the top {TOP_N}",
    ),
]
Username = Annotated[str, msgspec.Meta(max_length=MAX_USERNAME_LENGTH)]


class Wire(msgspec.Struct, rename="camel", forbid_unknown_fields=False):
    """Base of every declared body: camelCase on the wire."""


class Error(Wire):
    """Every error answer."""

    status: Literal["error"]
    message: str


class Message(Wire):
    """An answer that only says what happened."""

    message: str


class ScoreUpdateAccepted(Wire):
    """The answer to an accepted score update."""

    message: Literal["Score update queued"]
    new_score: Annotated[
        int,
        msgspec.Meta(
            ge=1,
            le=MAX_SAFE_INTEGER,
            description=(
                "The user's score once this update and every update accepted before it are applied"
            ),
        ),
    ]


class RankedEntry(Wire):
    """One row of the board with its 1-based rank."""

    rank: Score
    user_id: str
    username: Username
    score: Count  # 0 is a score on a `best` or `set` board


class BoardPage(Wire):
    """Consecutive rows of the board, read together with its version and size."""

    version: Annotated[
        int,
        msgspec.Meta(
            ge=0,
            le=MAX_SAFE_INTEGER,
            description=(
                f"The version of the top {TOP_N} when the page was read; at offset 0 its "
                f"first {TOP_N} entries are that version's `top10`"
            ),
        ),
    ]
    total: Annotated[int, msgspec.Meta(ge=0, le=MAX_SAFE_INTEGER, description="Users on the board")]
    entries: Annotated[tuple[RankedEntry, ...], msgspec.Meta(max_length=MAX_LIMIT)]


class UserRank(Wire):
    """A user's row and up to `around` neighbours on each side, read at one moment."""

    version: Version
    total: Score
    user: RankedEntry
    above: Annotated[
        tuple[RankedEntry, ...],
        msgspec.Meta(max_length=MAX_AROUND, description="Better ranked neighbours, best first"),
    ]
    below: Annotated[
        tuple[RankedEntry, ...],
        msgspec.Meta(max_length=MAX_AROUND, description="Worse ranked neighbours, best first"),
    ]


class HistoryEntry(Wire):
    """One applied update from the ledger."""

    entry_id: Annotated[str, msgspec.Meta(pattern="^[0-9]+$")]
    message_id: str
    username: str
    increment: Score
    score: Score
    accepted_at: Annotated[str, msgspec.Meta(extra_json_schema={"format": "date-time"})]
    applied_at: Annotated[str, msgspec.Meta(extra_json_schema={"format": "date-time"})]


class HistoryPage(Wire):
    """A page of a user's history, newest first."""

    user_id: str
    entries: list[HistoryEntry]
    next_before: Annotated[
        str | None,
        msgspec.Meta(description="Pass as `before` for the next, older page; null at the end"),
    ]


class TopEntry(Wire):
    """One row of the pushed top 10."""

    user_id: str
    username: str
    score: Count


class LeaderboardUpdate(Wire):
    """Payload of the Socket.IO event `leaderboardUpdate`; global's has no `boardId`, `season`."""

    event: Literal[LEADERBOARD_EVENT]  # type: ignore[valid-type]  # the one spelling, at runtime
    version: Version
    top10: Annotated[list[TopEntry], msgspec.Meta(max_length=TOP_N)]
    # Defined below; annotations are read when the schema is made.
    board_id: (
        Annotated[BoardId, msgspec.Meta(description="The board; left out for `global`")]
        | msgspec.UnsetType
    ) = msgspec.UNSET
    season: (
        Annotated[
            SeasonNumber,
            msgspec.Meta(description="The board's live season; left out for `global` (season 1)"),
        ]
        | msgspec.UnsetType
    ) = msgspec.UNSET


class Health(Wire):
    """The process serves."""

    message: Literal["ok"]


class Workers(Wire):
    """Workers with a current heartbeat."""

    alive: Count
    heartbeats: list[dict[str, Any]] = msgspec.field(name="list")


class Readiness(msgspec.Struct, rename="camel", frozen=True, omit_defaults=True):
    """Whether the backing services answer. With METRICS_TOKEN set, only a request sending it
    as `Authorization: Bearer …` gets more than `status` and `message`."""

    status: Literal["success", "error"]
    message: str
    mode: Literal["distributed", "single-process"] | None = None
    services: Annotated[
        dict[str, Literal["up", "down"]] | None,
        msgspec.Meta(description="redis, rabbitmq and postgresql, as far as configured"),
    ] = None
    queues: Annotated[
        dict[str, int | None] | None,
        msgspec.Meta(description="Messages ready in `main` and `dead_letter`"),
    ] = None
    workers: Annotated[
        Workers | None,
        msgspec.Meta(description="Workers with a current heartbeat; null when unknown"),
    ] = None


class DemoToken(Wire):
    """The demo user of the single-process mode and a token for it."""

    user_id: str
    username: str
    token: Annotated[str, msgspec.Meta(description="A bearer token for `userId`")]


class DeadLetter(Wire):
    """A message the worker could not apply, as it waits in the dead-letter queue."""

    message_id: str | None
    body: Annotated[str, msgspec.Meta(max_length=2000)]
    reason: str
    signed: bool


class DeadLetters(Wire):
    """The oldest dead letters; they stay in the queue."""

    dead_letters: list[DeadLetter]


class Replayed(Wire):
    """How many dead letters went back to the update queue."""

    message: str
    replayed: Count


RateLimits = dict[str, str]


class RateLimitsInForce(Wire):
    """Configured limits per tier (`default` for everyone else) and runtime overrides."""

    configured: RateLimits
    overrides: RateLimits


class RateLimitsSaved(Wire):
    """The overrides now in force."""

    message: str
    overrides: RateLimits


BoardId = Annotated[
    str,
    msgspec.Meta(
        pattern=BOARD_ID_PATTERN,
        title="BoardId",
        description="A board's id; `global` is the board of `/api/score/update` and the top 10",
    ),
]
SeasonNumber = Annotated[
    int, msgspec.Meta(ge=1, le=MAX_SAFE_INTEGER, description="The number of the live season")
]


class BoardSettings(Wire, forbid_unknown_fields=True):
    """The body of PUT /api/admin/boards/{boardId}; a field left out takes its default."""

    name: Annotated[
        str,
        msgspec.Meta(
            min_length=1,
            max_length=MAX_BOARD_NAME_LENGTH,
            description=(
                "Shown to players. Cleaned as display names are (control and invisible "
                "characters dropped, NFC, runs of whitespace as one space, none at either end); "
                f"1 to {MAX_BOARD_NAME_LENGTH} characters must remain"
            ),
        ),
    ]
    operator: Annotated[
        Operator,
        msgspec.Meta(
            description=(
                "How a posted value meets the user's score: `incr` adds it, `best` keeps the "
                "better of the two, `set` replaces the score"
            )
        ),
    ] = "incr"
    order: Annotated[
        Order, msgspec.Meta(description="`desc`: the highest score ranks first; `asc`: the lowest")
    ] = "desc"
    reset: Annotated[Reset, msgspec.Meta(description="When a new season starts")] = "never"
    authoritative: Annotated[
        bool, msgspec.Meta(description="Only service tokens may post scores to it")
    ] = False


class BoardSummary(Wire):
    """A board's settings and its live season."""

    board_id: BoardId
    name: str
    operator: Operator
    order: Order
    reset: Reset
    authoritative: bool
    season: SeasonNumber


class BoardDetails(BoardSummary):
    """A board's settings, its live season and when that season began."""

    season_started_at: Annotated[
        Annotated[datetime, msgspec.Meta(tz=True)] | None,
        msgspec.Meta(description="When the live season began; null when not recorded (`global`)"),
    ]


class BoardList(Wire):
    """Every board, `global` first, then by id."""

    boards: list[BoardSummary]


class BoardAnswer(Wire):
    """One board."""

    board: BoardDetails


def score_update_request(max_increment: int) -> type[msgspec.Struct]:
    """The body of POST /api/score/update, with this deployment's largest increment."""
    increment = Annotated[
        int,
        msgspec.Meta(
            ge=1,
            le=max_increment,
            description=(
                "Written as a plain JSON integer: `5`, not `5.0` or `5e0` (refused with 400 "
                "although JSON Schema counts them as integers too)"
            ),
        ),
    ]
    user_id = _user_id(f"{USER_ID_RULE}; must equal the token's `sub`")
    return msgspec.defstruct(
        "ScoreUpdateRequest",
        [("user_id", user_id), ("score_increment", increment)],
        bases=(Wire,),
    )


class BoardScoreAccepted(Wire):
    """The answer to an accepted score on a board."""

    message: Literal["Score update queued"]
    new_score: Annotated[
        int,
        msgspec.Meta(
            ge=0,
            le=MAX_SAFE_INTEGER,
            description=(
                "The user's value on the board once this update and every update accepted "
                "before it are applied"
            ),
        ),
    ]


def board_score_request(max_score: int) -> type[msgspec.Struct]:
    """The body of POST /api/boards/{boardId}/scores, with this deployment's largest value."""
    score = Annotated[
        int,
        msgspec.Meta(
            ge=0,
            le=max_score,
            description=(
                "On an `incr` board the amount to add (1 to `MAX_SCORE_INCREMENT`), on a `best` "
                "or `set` board the score itself (0 to `MAX_SCORE`); a plain JSON integer"
            ),
        ),
    ]
    user_id = _user_id(f"{USER_ID_RULE}; must equal the token's `sub` unless it is a service's")
    username = Annotated[
        str,
        msgspec.Meta(
            min_length=1,
            max_length=256,
            description="The name the board shows: required with a service token, else refused",
        ),
    ]
    return msgspec.defstruct(
        "BoardScoreRequest",
        [("user_id", user_id), ("score", score), ("username", username | None, None)],
        bases=(Wire,),
    )


class BoardSeasonPage(BoardPage):
    """A page of a board's live season: GET /api/leaderboard's page, and which board and season."""

    board_id: BoardId
    season: SeasonNumber


class BoardUserRank(UserRank):
    """A user's place on a board's live season, with the board and the season."""

    board_id: BoardId
    season: SeasonNumber


Season = Annotated[
    int,
    msgspec.Meta(
        ge=1, le=MAX_SAFE_INTEGER, title="Season", description="The number of a board's season"
    ),
]


class ClosedSeasonSummary(Wire):
    """One closed season of a board."""

    season: Season
    started_at: Annotated[
        Annotated[datetime, msgspec.Meta(tz=True)] | None,
        msgspec.Meta(description="When it began; null when not recorded"),
    ]
    ended_at: Annotated[datetime, msgspec.Meta(tz=True, description="When it closed")]
    entries: Annotated[Count, msgspec.Meta(description="Users ranked in it")]


class ClosedSeasonList(Wire):
    """A board's closed seasons, newest first (the newest `CLOSED_SEASONS_KEPT` are kept)."""

    board_id: BoardId
    seasons: list[ClosedSeasonSummary]


class ClosedSeasonPage(BoardPage):
    """A page of a closed season's final standings, with the board and the season."""

    board_id: BoardId
    season: Season


class SeasonReset(Wire):
    """The answer to closing a board's live season by hand."""

    message: str
    board_id: BoardId
    closed_season: Annotated[Season, msgspec.Meta(description="The season that closed")]
    season: Annotated[Season, msgspec.Meta(description="The live season now, empty")]


class BoardHistoryEntry(Wire):
    """One applied update on a board: what was posted, the value it led to, in which season."""

    entry_id: Annotated[str, msgspec.Meta(pattern="^[0-9]+$")]
    message_id: str
    username: str
    posted: Annotated[int, msgspec.Meta(ge=0, le=MAX_SAFE_INTEGER, description="`score` as posted")]
    score: Annotated[int, msgspec.Meta(ge=0, le=MAX_SAFE_INTEGER, description="The value after it")]
    season: SeasonNumber
    accepted_at: Annotated[str, msgspec.Meta(extra_json_schema={"format": "date-time"})]
    applied_at: Annotated[str, msgspec.Meta(extra_json_schema={"format": "date-time"})]


class BoardHistoryPage(Wire):
    """A page of a user's history on one board, every season, newest first."""

    user_id: str
    board_id: BoardId
    entries: list[BoardHistoryEntry]
    next_before: Annotated[
        str | None,
        msgspec.Meta(description="Pass as `before` for the next, older page; null at the end"),
    ]


BoardIds = Annotated[
    list[BoardId],
    msgspec.Meta(
        max_length=MAX_BOARDS_PER_CLIENT,
        description=f"At most {MAX_BOARDS_PER_CLIENT} board ids; an id listed twice counts once",
    ),
]


class SocketAuth(Wire):
    """The `auth` of the Socket.IO handshake (or an `Authorization: Bearer` header instead)."""

    token: Annotated[str, msgspec.Meta(description="The same bearer token as the REST API's")]
    boards: (
        Annotated[
            BoardIds,
            msgspec.Meta(description="The boards to hold; left out: `global` alone"),
        ]
        | msgspec.UnsetType
    ) = msgspec.UNSET


class ConnectionRefused(Wire):
    """Why the handshake was refused (`connect_error`): a bad token or a bad `boards`."""

    message: str


class BoardsRequest(Wire):
    """The payload of `subscribe` and `unsubscribe`."""

    boards: BoardIds


class BoardsHeld(Wire):
    """The acknowledgement of a `subscribe` or `unsubscribe` that succeeded."""

    status: Literal["success"]
    boards: Annotated[list[BoardId], msgspec.Meta(description="Every board now held, sorted")]
