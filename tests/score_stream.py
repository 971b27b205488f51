"""A steady stream of +1 score updates over real HTTP, and the bookkeeping to check it exactly."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import redis.asyncio as redis

from tests.conftest import bearer

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
NO_ANSWER = 0  # the status recorded when the web process did not answer at all


@dataclass
class StreamResult:
    """What the clients saw: every status, and the updates the service accepted per user."""

    statuses: Counter[int] = field(default_factory=Counter)
    accepted: Counter[str] = field(default_factory=Counter)
    timeline: list[tuple[float, int]] = field(default_factory=list)
    slowest: dict[int, float] = field(default_factory=dict)  # status -> longest wait for it
    new_scores: dict[str, list[int]] = field(default_factory=dict)  # each 200's newScore

    @property
    def sent(self) -> int:
        return sum(self.statuses.values())

    def statuses_between(self, start: float, end: float) -> Counter[int]:
        return Counter(status for at, status in self.timeline if start <= at < end)


async def stream_updates(
    base_url: str | Sequence[str],
    tokens: dict[str, str],
    duration: float,
    concurrency: int = 8,
    boards: Mapping[str, str] | None = None,
) -> StreamResult:
    """POST +1 for the users in turn from `concurrency` clients for `duration` seconds, to
    global, or with `boards` to each user's board there; client k posts to base_url k mod n."""
    base_urls = [base_url] if isinstance(base_url, str) else list(base_url)
    result = StreamResult()
    users = list(tokens)
    started = time.monotonic()
    timeout = aiohttp.ClientTimeout(total=10)

    def request(user: str) -> tuple[str, dict[str, object]]:
        if boards is None:
            return "/api/score/update", {"userId": user, "scoreIncrement": 1}
        return f"/api/boards/{boards[user]}/scores", {"userId": user, "score": 1}

    async def client(offset: int, session: aiohttp.ClientSession) -> None:
        turn = offset
        base = base_urls[offset % len(base_urls)]
        while time.monotonic() - started < duration:
            user = users[turn % len(users)]
            turn += concurrency
            sent_at = time.monotonic() - started
            path, body = request(user)
            try:
                async with session.post(
                    f"{base}{path}", json=body, headers=bearer(tokens[user])
                ) as response:
                    status = response.status
                    body = await response.read()
            except (aiohttp.ClientError, TimeoutError):
                status = NO_ANSWER
                await asyncio.sleep(0.05)
            waited = time.monotonic() - started - sent_at
            result.slowest[status] = max(waited, result.slowest.get(status, 0.0))
            result.statuses[status] += 1
            result.timeline.append((sent_at, status))
            if status == 200:
                result.accepted[user] += 1
                result.new_scores.setdefault(user, []).append(json.loads(body)["newScore"])
            else:
                await asyncio.sleep(0.02)  # as a polite client would before retrying

    async with aiohttp.ClientSession(timeout=timeout) as session:
        await asyncio.gather(*(client(i, session) for i in range(concurrency)))
    return result


async def board_totals(redis_url: str, prefix: str) -> dict[str, int]:
    """Every user's applied score, read straight from the board's sorted set."""
    client = redis.from_url(redis_url)
    try:
        rows = await client.zrange(f"{prefix}board", 0, -1, withscores=True)
    finally:
        await client.aclose()
    # Members are '<16-digit seq>:<userId>', scored by the negated total.
    return {member.decode()[17:]: int(-score) for member, score in rows}


async def wait_for_totals(
    redis_url: str, prefix: str, expected: Counter[str], timeout: float = 40.0
) -> dict[str, int]:
    """Poll the board until it equals `expected` or `timeout` passes; return the last reading."""
    deadline = time.monotonic() + timeout
    while True:
        totals = await board_totals(redis_url, prefix)
        if totals == dict(expected) or time.monotonic() > deadline:
            return totals
        await asyncio.sleep(0.2)


def exactness(result: StreamResult, totals: dict[str, int]) -> dict[str, float]:
    """The closing-note figures: sent, accepted, refused, applied, lost, double-counted."""
    users = set(result.accepted) | set(totals)
    return {
        "sent": result.sent,
        "accepted": sum(result.accepted.values()),
        "refused_503": result.statuses[503],
        "no_answer": result.statuses[NO_ANSWER],
        "other_status": result.sent
        - result.statuses[200]
        - result.statuses[503]
        - result.statuses[NO_ANSWER],
        "applied": sum(totals.values()),
        "lost": sum(max(0, result.accepted[u] - totals.get(u, 0)) for u in users),
        "double_counted": sum(max(0, totals.get(u, 0) - result.accepted[u]) for u in users),
        "slowest_503_seconds": round(result.slowest.get(503, 0.0), 2),
    }


def record_figures(name: str, figures: dict[str, float]) -> None:
    """Keep the figures of a fault test in tests/artifacts for the closing note."""
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / f"{name}.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(name, figures)
