"""Odd identities and input through the whole pipeline: a clear 4xx and no trace, or 200 and
the update applied exactly once with the newScore it was answered with.

web → RabbitMQ → worker → Redis → PostgreSQL, all real; each case is one a client or a
misconfigured auth service could send (see the hardening notes in docs).
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import asyncpg
import pytest
import redis.asyncio as redis

from scoreboard.apply.store.redis_store import RedisLeaderboardStore
from scoreboard.intake.auth import issue_token
from scoreboard.queue.dead_letters import DeadLetters
from scoreboard.queue.queue_layout import QueueLayout
from tests.conftest import JWT_SECRET, RABBITMQ_URLS, REDIS_URL, bearer
from tests.processes import WebProcess, service_processes
from tests.score_stream import wait_for_totals

ADMIN = issue_token(JWT_SECRET, "root", "Root", extra_claims={"role": "admin"})
NFC_JOSE = "Jos\u00e9"
NFD_JOSE = "Jose\u0301"


@dataclass
class Ledger:
    """What every 200 promised: per user, the sum of the increments and the last newScore."""

    totals: Counter[str] = field(default_factory=Counter)
    answers: dict[str, list[int]] = field(default_factory=dict)

    def accepted(self, user: str, increment: int, new_score: int) -> None:
        self.totals[user] += increment
        self.answers.setdefault(user, []).append(new_score)


@pytest.fixture
def web(tmp_path: Path, env: dict[str, str], database_url: str) -> Iterator[WebProcess]:
    with service_processes(tmp_path) as processes:
        [node] = processes.start_distributed(
            {**env, "DATABASE_URL": database_url, "RATE_LIMIT": "1000/minute"}
        )
        yield node


async def _post(
    http: aiohttp.ClientSession,
    web: WebProcess,
    token: str,
    user: str,
    increment: int,
    headers: dict[str, str] | None = None,
    data: bytes | None = None,
) -> tuple[int, dict]:
    body = data if data is not None else _json_body(user, increment)
    async with http.post(
        f"{web.url}/api/score/update",
        data=body,
        headers={**bearer(token), "Content-Type": "application/json", **(headers or {})},
    ) as response:
        return response.status, await response.json(content_type=None)


def _json_body(user: str, increment: int) -> bytes:
    return json.dumps({"userId": user, "scoreIncrement": increment}).encode()


async def test_odd_identities_are_refused_or_applied_exactly_once(
    web: WebProcess, env: dict[str, str], database_url: str, http: aiohttp.ClientSession
):
    promised = Ledger()
    refused: list[tuple[str, int, str]] = []

    async def expect_200(token: str, user: str, increment: int, stored_as: str) -> dict:
        status, body = await _post(http, web, token, user, increment)
        assert status == 200, body
        promised.accepted(stored_as, increment, body["newScore"])
        return body

    async def expect_refusal(status: int, token: str, user: str, what: str) -> None:
        got, body = await _post(http, web, token, user, 1)
        assert got == status, (what, body)
        assert body["status"] == "error" and body["message"], body
        refused.append((user, got, what))

    # Names that stopped the ledger or the queue: cleaned, applied, and shown clean.
    nul_name = issue_token(JWT_SECRET, "nul-name", "Nu\x00ll")
    surrogate_name = issue_token(JWT_SECRET, "lone-surrogate", "S\ud800")
    escape_name = issue_token(JWT_SECRET, "escapes", "\x1b[31mRed\x1b[0m\r\nX\u202eevil")
    filler_name = issue_token(JWT_SECRET, "filler", "\u3164\u3164")
    for _ in range(2):
        await expect_200(nul_name, "nul-name", 4, "nul-name")
        await expect_200(surrogate_name, "lone-surrogate", 4, "lone-surrogate")
    await expect_200(escape_name, "escapes", 3, "escapes")
    await expect_200(filler_name, "filler", 2, "filler")

    # One person, whichever normal form the auth service or the client writes their id in.
    await expect_200(issue_token(JWT_SECRET, NFD_JOSE, "José"), NFC_JOSE, 5, NFC_JOSE)
    await expect_200(issue_token(JWT_SECRET, NFC_JOSE, "José"), NFD_JOSE, 6, NFC_JOSE)

    # Subjects no update could carry: 401 whatever the body says.
    for subject in ("S\ud800", "nul\x00sub", "\u0430lice", "a\u202eb", "\u3164", " padded"):
        await expect_refusal(401, issue_token(JWT_SECRET, subject, "x"), subject, "bad sub")
    # Body ids under the same rule: 400.
    plain = issue_token(JWT_SECRET, "plain", "Plain")
    for user in ("pla\x00in", "\u0440lain", "plain\u200b", "plain\n"):
        await expect_refusal(400, plain, user, "bad userId")
    await expect_200(plain, "plain", 1, "plain")

    assert await wait_for_totals(REDIS_URL, env["REDIS_KEY_PREFIX"], promised.totals) == dict(
        promised.totals
    )
    await _assert_applied_exactly_as_promised(env, database_url, promised)

    client = redis.from_url(REDIS_URL)
    try:
        board = await RedisLeaderboardStore(client, env["REDIS_KEY_PREFIX"]).leaderboard()
    finally:
        await client.aclose()
    names = {entry.user_id: entry.username for entry in board.top}
    assert names["nul-name"] == "Null"
    assert names["lone-surrogate"] == "S"
    assert names["escapes"] == "Red Xevil"
    assert names["filler"] == "filler", "a name of only fillers falls back to the id"
    assert names[NFC_JOSE] == "José"
    assert await DeadLetters(RABBITMQ_URLS, QueueLayout(env["QUEUE_NAME"])).peek(10) == []


async def _assert_applied_exactly_as_promised(
    env: dict[str, str], database_url: str, promised: Ledger
) -> None:
    client = redis.from_url(REDIS_URL)
    try:
        standings = await RedisLeaderboardStore(client, env["REDIS_KEY_PREFIX"]).standings()
    finally:
        await client.aclose()
    assert {s.user_id: s.score for s in standings} == dict(promised.totals)
    for user, answers in promised.answers.items():
        assert answers[-1] == promised.totals[user], f"last newScore of {user!r} is its total"
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch("SELECT user_id, increment FROM score_ledger")
    finally:
        await connection.close()
    ledgered: Counter[str] = Counter()
    for row in rows:
        ledgered[row["user_id"]] += row["increment"]
    assert ledgered == promised.totals
    assert len(rows) == sum(len(answers) for answers in promised.answers.values())


@pytest.mark.parametrize(
    ("encoding", "body", "status", "message"),
    [
        ("gzip", b'{"userId": "enc", "scoreIncrement": 1}', 400, "could not be decoded as gzip"),
        ("deflate", b"plain", 400, "could not be decoded as deflate"),
        # A truncated raw-deflate stream: aiohttp's own decoder waited for the rest forever.
        ("deflate", b"\xd2;", 400, "could not be decoded as deflate"),
        ("gzip", gzip.compress(b"0" * 1_000_000), 413, "Request body too large"),
        ("gzip", gzip.compress(b"{}") + b"trailing", 400, "could not be decoded as gzip"),
        ("compress", b"anything", 415, "Content-Encoding must be gzip, deflate or identity"),
        ("gzip, gzip", b"x", 415, "Content-Encoding must be gzip, deflate or identity"),
    ],
)
async def test_bodies_in_a_bad_encoding_get_a_clear_answer(
    web: WebProcess, http: aiohttp.ClientSession, encoding, body, status, message
):
    token = issue_token(JWT_SECRET, "enc", "Enc")
    got, answer = await _post(
        http, web, token, "enc", 1, headers={"Content-Encoding": encoding}, data=body
    )
    assert got == status and message in answer["message"], answer
    async with http.put(
        f"{web.url}/api/admin/rate-limits",
        data=body,
        headers={**bearer(ADMIN), "Content-Encoding": encoding},
    ) as response:
        answer = await response.json()
        assert response.status == status and message in answer["message"], answer


def _raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-15)
    return compressor.compress(data) + compressor.flush()


@pytest.mark.parametrize(
    ("name", "encode"),
    [("gzip", gzip.compress), ("deflate", zlib.compress), ("deflate", _raw_deflate)],
)
async def test_a_compressed_body_is_read(
    web: WebProcess, http: aiohttp.ClientSession, name, encode
):
    token = issue_token(JWT_SECRET, "zipped", "Zipped")
    status, answer = await _post(
        http,
        web,
        token,
        "zipped",
        1,
        headers={"Content-Encoding": name},
        data=encode(_json_body("zipped", 2)),
    )
    assert (status, answer["newScore"]) == (200, 2)


ODD_INTEGERS = ["\u00b2", "\u0663", "\uff15", "05", "+5", "-1", "5e1", " 5", "", "9" * 5000]


@pytest.mark.parametrize("value", ODD_INTEGERS)
async def test_odd_integer_parameters_are_400_on_every_route(
    web: WebProcess, http: aiohttp.ClientSession, value: str
):
    alice = bearer(issue_token(JWT_SECRET, "alice", "Alice"))
    admin = bearer(ADMIN)
    for method, path, headers in [
        ("GET", "/api/leaderboard?limit=", alice),
        ("GET", "/api/leaderboard?offset=", alice),
        ("GET", "/api/users/alice/rank?around=", alice),
        ("GET", "/api/users/alice/history?limit=", alice),
        ("GET", "/api/users/alice/history?before=", alice),
        ("GET", "/api/admin/dead-letters?limit=", admin),
        ("POST", "/api/admin/dead-letters/replay?limit=", admin),
    ]:
        async with http.request(method, f"{web.url}{path}{value}", headers=headers) as response:
            body = await response.json()
            assert response.status == 400, (path, value, body)
            assert body["status"] == "error" and "must be an integer" in body["message"], body


async def test_repeated_integer_parameters_are_400(web: WebProcess, http: aiohttp.ClientSession):
    alice = bearer(issue_token(JWT_SECRET, "alice", "Alice"))
    for path in ("/api/leaderboard?limit=5&limit=6", "/api/users/alice/history?limit=1&limit=1"):
        async with http.get(f"{web.url}{path}", headers=alice) as response:
            assert response.status == 400, path


async def test_path_ids_no_update_could_carry_are_400(web: WebProcess, http: aiohttp.ClientSession):
    odd = bearer(issue_token(JWT_SECRET, "nul\x00user", "Nul"))
    async with http.get(f"{web.url}/api/users/nul%00user/history", headers=odd) as response:
        assert response.status == 401, "the token's own sub is refused first"
    alice = bearer(issue_token(JWT_SECRET, "alice", "Alice"))
    async with http.get(f"{web.url}/api/users/al%00ice/history", headers=alice) as response:
        assert response.status == 400
    async with http.delete(f"{web.url}/api/admin/users/zz%00zz", headers=bearer(ADMIN)) as resp:
        body = await resp.json()
        assert (resp.status, body["message"]) == (400, "userId must not contain control characters")


@pytest.mark.parametrize(
    "limit",
    ["99999999999999999999/second", "0/minute", "5 per 2 days", "1/second;2/minute", "lots"],
)
async def test_admin_limits_the_store_cannot_hold_are_refused_and_the_old_one_stays(
    web: WebProcess, http: aiohttp.ClientSession, limit: str
):
    url = f"{web.url}/api/admin/rate-limits"
    async with http.put(url, json={"default": "3/minute"}, headers=bearer(ADMIN)) as response:
        assert response.status == 200
    async with http.put(url, json={"default": limit}, headers=bearer(ADMIN)) as response:
        body = await response.json()
        assert response.status == 400 and limit in body["message"], body
    async with http.get(url, headers=bearer(ADMIN)) as response:
        assert (await response.json())["overrides"] == {"default": "3/minute"}
    token = issue_token(JWT_SECRET, "limited", "Limited")
    statuses = [(await _post(http, web, token, "limited", 1))[0] for _ in range(4)]
    assert statuses == [200, 200, 200, 429], "the old limit is still in force"


@pytest.mark.parametrize("body", [b"[" * 5000, b'{"a":' * 5000, b"[" * 100_000])
async def test_deeply_nested_bodies_are_400(
    web: WebProcess, http: aiohttp.ClientSession, body: bytes
):
    token = issue_token(JWT_SECRET, "deep", "Deep")
    status, answer = await _post(http, web, token, "deep", 1, data=body[:16_000])
    assert status == 400 and answer["message"] == "Request body must be valid JSON"
    async with http.put(
        f"{web.url}/api/admin/rate-limits", data=body[:16_000], headers=bearer(ADMIN)
    ) as response:
        assert response.status == 400
        assert (await response.json())["message"] == "Request body must be valid JSON"
