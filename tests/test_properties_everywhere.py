"""Property-based, against a live web node, worker and ledger: every route, every token claim,
every Socket.IO handshake. Whatever arrives, the answer is ours (no 5xx, the JSON error body)
and no process prints a traceback.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import http.client
import json
import os
import re
import urllib.parse
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scoreboard.api.endpoints import ENDPOINTS, SOCKETIO_PATH
from scoreboard.intake.auth import issue_token
from tests.conftest import (
    DATABASE_URL,
    JWT_SECRET,
    RABBITMQ_URL,
    REDIS_URL,
    remove_keys,
    remove_queues,
)
from tests.processes import WebProcess, service_processes
from tests.score_stream import record_figures

# Cases per test; together with tests/test_properties.py well over 10,000 in every run.
ROUTE_CASES = int(os.environ.get("PROPERTY_ROUTE_CASES", 6000))
CLAIM_CASES = int(os.environ.get("PROPERTY_CLAIM_CASES", 2500))
HANDSHAKE_CASES = int(os.environ.get("PROPERTY_HANDSHAKE_CASES", 1500))

USER = "prop-user"
TOKENS = {
    "user": issue_token(JWT_SECRET, USER, "Prop"),
    "admin": issue_token(JWT_SECRET, "prop-admin", "Admin", extra_claims={"role": "admin"}),
}
NO_PRACTICAL_LIMIT = "1000000/minute"
# Answers by test and status, kept in tests/artifacts for the closing note.
TALLY: Counter[str] = Counter()


# Every declared endpoint (tests/test_api_declarations.py checks they are the app's routes).
ROUTES = sorted((endpoint.method, endpoint.path) for endpoint in ENDPOINTS)


@pytest.fixture(scope="module", autouse=True)
def tally() -> Iterator[None]:
    yield
    record_figures("property_cases", dict(sorted(TALLY.items())))


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebProcess]:
    """A web node, a worker and a ledger of this module's own, all removed afterwards."""
    name = f"sbtest-{uuid.uuid4().hex[:12]}"
    schema = name.replace("-", "_")
    asyncio.run(_sql(f'CREATE SCHEMA "{schema}"'))
    env = {
        "REDIS_URL": REDIS_URL,
        "RABBITMQ_URL": RABBITMQ_URL,
        "DATABASE_URL": f"{DATABASE_URL}?search_path={schema}",
        "JWT_SECRET": JWT_SECRET,
        "REDIS_KEY_PREFIX": f"{name}:",
        "QUEUE_NAME": name,
        "RATE_LIMIT": NO_PRACTICAL_LIMIT,
        "READ_RATE_LIMIT": NO_PRACTICAL_LIMIT,
    }
    try:
        with service_processes(Path(tmp_path_factory.mktemp("everywhere"))) as processes:
            [node] = processes.start_distributed(env)
            yield node
    finally:
        remove_keys(f"{name}:")
        asyncio.run(remove_queues(name))
        asyncio.run(_sql(f'DROP SCHEMA "{schema}" CASCADE'))


async def _sql(statement: str) -> None:
    connection = await asyncpg.connect(DATABASE_URL)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def examples(count: int) -> settings:
    return settings(
        max_examples=count,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


def request(
    web: WebProcess,
    method: str,
    target: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, str, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", web.port, timeout=10)
    try:
        connection.request(method, target, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type", ""), response.read()
    finally:
        connection.close()


def assert_ours(status: int, content_type: str, body: bytes, what: object) -> Any:
    """No 5xx; an API answer is the documented JSON body."""
    assert status < 500, (what, status, body[:300])
    if content_type.startswith("application/json"):
        document = json.loads(body)
        if status >= 400:
            assert document["status"] == "error" and isinstance(document["message"], str), what
        return document
    assert status < 400, (what, status, content_type, body[:300])
    return None


# Text as clients and attackers send it: any code point, controls and odd digits more often.
odd_text = st.one_of(
    st.text(max_size=40),
    st.text(alphabet="0123456789²٣５+-e. \x00\n%", max_size=12),
    st.sampled_from(["", "0", "05", "9" * 30, "-1", "1e3", "null", "[]", "%00", "%ff", "..", "/"]),
)
# Path segments: whatever text, percent-encoded as a client library would, or raw odd escapes.
segments = st.one_of(
    odd_text.map(lambda text: urllib.parse.quote(text.encode("utf-8", "surrogatepass"), safe="")),
    st.sampled_from(["%", "%zz", "%ed%a0%80", "%c0%80", "alice", USER, "prop-admin"]),
)
query_pairs = st.lists(
    st.tuples(
        st.sampled_from(["limit", "offset", "around", "before", "x"]) | st.text(max_size=8),
        odd_text,
    ),
    max_size=4,
)
bodies = st.one_of(
    st.none(),
    st.binary(max_size=200),
    st.fixed_dictionaries(
        {"userId": st.sampled_from([USER, "x"]) | odd_text, "scoreIncrement": st.integers()}
    ).map(lambda d: json.dumps(d).encode()),
    st.dictionaries(odd_text, odd_text, max_size=3).map(lambda d: json.dumps(d).encode()),
    st.integers(1, 3000).map(lambda depth: b"[" * depth),
)
authorization = st.one_of(
    st.sampled_from(list(TOKENS)).map(lambda who: f"Bearer {TOKENS[who]}"),
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=60),
)

content_encodings = st.sampled_from([None, "gzip", "deflate", "identity", "br", "x, y", "GZIP"])


@examples(ROUTE_CASES)
@given(
    route=st.sampled_from(ROUTES),
    path_values=st.lists(segments, min_size=4, max_size=4),
    query=query_pairs,
    body=bodies,
    auth=authorization,
    encoding=content_encodings,
)
def test_any_request_on_every_route(
    web: WebProcess,
    route: tuple[str, str],
    path_values: list[str],
    query: list[tuple[str, str]],
    body: bytes | None,
    auth: str,
    encoding: str | None,
) -> None:
    method, template = route
    values = iter(path_values)
    path = re.sub(r"\{[^}]+\}", lambda _: next(values) or "x", template)
    target = path + ("?" + urllib.parse.urlencode(query) if query else "")
    headers = {"Authorization": auth, "Content-Type": "application/json"}
    if encoding is not None:
        headers["Content-Encoding"] = encoding
    status, content_type, answer = request(web, method, target, body, headers)
    assert_ours(status, content_type, answer, (method, target, body, encoding))
    TALLY[f"route {status}"] += 1


def signed(header: dict[str, Any], claims: dict[str, Any]) -> str:
    """An HS256 token with any header and claims, even those PyJWT would not write."""
    parts = [_b64(json.dumps(part).encode()) for part in (header, claims)]
    signing_input = ".".join(parts).encode()
    mac = hmac.new(JWT_SECRET.encode(), signing_input, hashlib.sha256).digest()
    return f"{signing_input.decode()}.{_b64(mac)}"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


claim_values = st.one_of(
    odd_text,
    st.none(),
    st.integers(),
    st.booleans(),
    st.lists(st.text(max_size=5), max_size=2),
    st.sampled_from(["S\ud800", "nul\x00", "\u0430lice", "Jose\u0301", "\u3164", "\u202e"]),
)


@examples(CLAIM_CASES)
@given(
    sub=claim_values,
    name=claim_values,
    preferred=claim_values,
    tier=claim_values,
    role=st.sampled_from([None, "admin", "Admin", "", "user"]) | claim_values,
    kid=st.none() | claim_values,
    increment=st.integers(1, 5),
)
def test_any_token_claims(
    web: WebProcess,
    sub: Any,
    name: Any,
    preferred: Any,
    tier: Any,
    role: Any,
    kid: Any,
    increment: int,
) -> None:
    claims: dict[str, Any] = {"sub": sub, "exp": 2**31 - 1}
    for claim, value in (("name", name), ("preferred_username", preferred), ("tier", tier)):
        if value is not None:
            claims[claim] = value
    if role is not None:
        claims["role"] = role
    header = {"alg": "HS256", "typ": "JWT"} if kid is None else {"alg": "HS256", "kid": kid}
    token = signed(header, claims)
    user = sub if isinstance(sub, str) else USER
    body = json.dumps({"userId": user, "scoreIncrement": increment}).encode()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    status, content_type, answer = request(web, "POST", "/api/score/update", body, headers)
    document = assert_ours(status, content_type, answer, claims)
    TALLY[f"claims {status}"] += 1
    # An oracle written from the rule, not from the code: what surely fails, what surely passes.
    if not isinstance(sub, str) or not sub or re.search(r"[\x00-\x1f\x7f\ud800-\udfff]", sub):
        assert status == 401, (claims, document)
    plain_kid = kid is None or isinstance(kid, str)  # RFC 7515: a kid is a string
    if plain_kid and isinstance(sub, str) and re.fullmatch(r"[A-Za-z0-9_-]{1,64}", sub):
        assert status == 200 and isinstance(document["newScore"], int), (claims, document)


eio_queries = st.one_of(
    st.just("EIO=4&transport=polling"),
    st.builds(
        lambda eio, transport, extra: urllib.parse.urlencode(
            [("EIO", eio), ("transport", transport), *extra]
        ),
        st.sampled_from(["4", "3", "5", "", "x", "٤"]),
        st.sampled_from(["polling", "websocket", "", "carrier-pigeon"]),
        st.lists(st.tuples(st.sampled_from(["sid", "t", "b64", "j"]), odd_text), max_size=2),
    ),
)
connect_packets = st.one_of(
    st.builds(
        lambda auth: "40" + json.dumps(auth),
        st.one_of(
            st.fixed_dictionaries({"token": st.sampled_from(list(TOKENS.values())) | odd_text}),
            st.dictionaries(odd_text, claim_values, max_size=3),
            claim_values,
        ),
    ),
    odd_text.map(lambda text: "4" + text),
    odd_text,
)


@examples(HANDSHAKE_CASES)
@given(query=eio_queries, packet=connect_packets)
def test_any_socketio_handshake(web: WebProcess, query: str, packet: str) -> None:
    base = f"/{SOCKETIO_PATH}/?{query}"
    status, content_type, opened = request(web, "GET", base)
    assert status < 500, (query, status, opened[:200])
    TALLY[f"handshake open {status}"] += 1
    if status != 200 or not opened.startswith(b"0"):
        return
    sid = json.loads(opened[1:])["sid"]
    polled = f"/{SOCKETIO_PATH}/?EIO=4&transport=polling&sid={sid}"
    body = packet.encode("utf-8", "surrogatepass")
    status, _, answer = request(web, "POST", polled, body, {"Content-Type": "text/plain"})
    assert status < 500, (packet, status, answer[:200])
    TALLY[f"handshake packet {status}"] += 1
    if status == 200 and packet == "40" + json.dumps({"token": TOKENS["user"]}):
        status, _, answer = request(web, "GET", polled)
        assert status == 200 and answer.startswith(b"40"), answer[:200]
    # Whatever else the server made of the packet shows in its log: a traceback fails the module.
    request(web, "POST", polled, b"1", {"Content-Type": "text/plain"})  # close
