"""A sender process: POST score updates open-loop, each at its scheduled time, and time them."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection

from bench.board_spread import board_of_user
from bench.child import cpu_seconds, receive, run_child
from bench.endpoint import Endpoint
from bench.http_connection import ConnectionLost, HttpConnection
from scoreboard.boards.model import GLOBAL_BOARD_ID

UPDATE_PATH = "/api/score/update"  # global's, as SPEC.md has it
BOARD_SCORES_PATH = "/api/boards/{board_id}/scores"
CONNECTION_ERROR = "connection_error"  # never sent: no connection
CONNECTION_LOST = "connection_lost"  # sent, no answer: applied or not, nobody knows
TIMEOUT = "timeout"  # sent, no answer in time: the same
NOT_SENT = "not_sent"


@dataclass(frozen=True)
class SendPlan:
    """What one sender process is asked to do: its share of a schedule of `total` requests.

    Request i (of every process) is due at start + i / rate and is for user i % len(users), on
    that user's board (`board_spread`); this process sends those with i % processes == index.
    """

    endpoint: Endpoint
    board_ids: tuple[str, ...]
    user_ids: tuple[str, ...]
    tokens: tuple[str, ...]
    total: int
    rate: float
    index: int
    processes: int
    connections: int
    max_increment: int
    request_timeout: float
    give_up_after: float  # seconds past its due time after which a request is not sent
    seed: int


@dataclass
class Accepted:
    """The 200 answers, one entry per request, in parallel lists (cheap to pickle)."""

    boards: list[int] = field(default_factory=list)
    users: list[int] = field(default_factory=list)
    answered_at: list[float] = field(default_factory=list)
    new_scores: list[int] = field(default_factory=list)
    increments: list[int] = field(default_factory=list)


@dataclass
class SendResults:
    """What one sender process sent and what came back."""

    statuses: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)  # seconds from due time to response
    send_lags: list[float] = field(default_factory=list)  # seconds from due time to sending
    accepted: Accepted = field(default_factory=Accepted)
    # (board, user) -> increments sent that got no answer
    unanswered: Counter[tuple[int, int]] = field(default_factory=Counter)
    first_error: str = ""
    cpu_seconds: float = 0.0
    wall_seconds: float = 0.0


def run_senders(plan: SendPlan, connection: Connection) -> None:
    """Process entry: open connections, report "ready", wait for "go" (start time), report."""
    run_child(lambda: _serve(plan, connection), connection)


async def _serve(plan: SendPlan, connection: Connection) -> None:
    pool = [await _open(plan) for _ in range(plan.connections)]
    connection.send(("ready", None))
    kind, start = await receive(connection)
    if kind != "go":
        return
    results = SendResults()
    began, cpu_at_start = time.monotonic(), cpu_seconds()
    due = iter(range(plan.index, plan.total, plan.processes))
    requests = _Requests(plan)
    await asyncio.gather(*(_send_loop(plan, start, due, slot, requests, results) for slot in pool))
    results.cpu_seconds = cpu_seconds() - cpu_at_start
    results.wall_seconds = time.monotonic() - began
    connection.send(("results", results))


async def _open(plan: SendPlan) -> HttpConnection | str:
    """A connection, or why there is none (the send loop then counts connection errors)."""
    try:
        return await HttpConnection.open(plan.endpoint, plan.request_timeout)
    except (OSError, TimeoutError) as exc:
        return f"{type(exc).__name__}: {exc}"


class _Requests:
    """Request bytes, built once per board and user up to the body."""

    def __init__(self, plan: SendPlan) -> None:
        self._plan = plan
        self._starts: dict[tuple[int, int], tuple[bytes, bytes]] = {}
        self._random = random.Random(plan.seed)
        self._max_increment = plan.max_increment

    def build(self, board: int, user: int) -> tuple[bytes, int]:
        increment = 1 if self._max_increment == 1 else self._random.randint(1, self._max_increment)
        start = self._starts.get((board, user))
        if start is None:
            start = self._starts[(board, user)] = self._start(board, user)
        head, body_start = start
        body = body_start + str(increment).encode() + b"}"
        return head + str(len(body)).encode() + b"\r\n\r\n" + body, increment

    def _start(self, board: int, user: int) -> tuple[bytes, bytes]:
        """The head up to Content-Length's value, and the body up to the score's."""
        plan = self._plan
        board_id = plan.board_ids[board]
        if board_id == GLOBAL_BOARD_ID:
            path, field = UPDATE_PATH, "scoreIncrement"
        else:
            path, field = BOARD_SCORES_PATH.format(board_id=board_id), "score"
        head = (
            f"POST {plan.endpoint.base_path}{path} HTTP/1.1\r\n"
            f"Host: {plan.endpoint.host_header}\r\n"
            f"Authorization: Bearer {plan.tokens[user]}\r\n"
            "Content-Type: application/json\r\nContent-Length: "
        )
        body = f'{{"userId": {json.dumps(plan.user_ids[user])}, "{field}": '
        return head.encode(), body.encode()


async def _send_loop(
    plan: SendPlan,
    start: float,
    due: Iterator[int],
    slot: HttpConnection | str,
    requests: _Requests,
    results: SendResults,
) -> None:
    """One connection's loop: take the next due request, wait for its time, send, record."""
    statuses = results.statuses
    users, boards = len(plan.user_ids), len(plan.board_ids)
    for index in due:
        scheduled = start + index / plan.rate
        wait = scheduled - time.time()
        if wait > 0:
            await asyncio.sleep(wait)
        elif -wait > plan.give_up_after:
            statuses[NOT_SENT] += 1
            continue
        if isinstance(slot, str) or not slot.reusable:
            slot = await _open(plan)
            if isinstance(slot, str):
                statuses[CONNECTION_ERROR] += 1
                results.first_error = results.first_error or slot
                continue
        user = index % users
        board = board_of_user(user, boards)
        raw, increment = requests.build(board, user)
        sent_at = time.time()
        try:
            async with asyncio.timeout(plan.request_timeout):
                response = await slot.request(raw)
        except TimeoutError:
            slot.close()
            statuses[TIMEOUT] += 1
            results.unanswered[(board, user)] += increment
            results.first_error = results.first_error or f"no answer in {plan.request_timeout:g}s"
            continue
        except ConnectionLost as exc:
            statuses[CONNECTION_LOST] += 1
            results.unanswered[(board, user)] += increment
            results.first_error = results.first_error or f"connection lost: {exc}"
            continue
        answered_at = time.time()
        results.latencies.append(answered_at - scheduled)
        results.send_lags.append(sent_at - scheduled)
        statuses[str(response.status)] += 1
        if response.status == 200:
            _note_accepted(results, board, user, answered_at, response.body, increment)
        elif not results.first_error:
            results.first_error = (
                f"{response.status} {response.body[:200].decode('utf-8', 'replace')}"
            )
    if isinstance(slot, HttpConnection):
        slot.close()


def _note_accepted(
    results: SendResults, board: int, user: int, answered_at: float, body: bytes, increment: int
) -> None:
    accepted = results.accepted
    try:
        new_score = int(json.loads(body)["newScore"])
    except (ValueError, TypeError, KeyError):
        new_score = -1  # accepted, but the answer carries no usable newScore
    accepted.boards.append(board)
    accepted.users.append(user)
    accepted.answered_at.append(answered_at)
    accepted.new_scores.append(new_score)
    accepted.increments.append(increment)
