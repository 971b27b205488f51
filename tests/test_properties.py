"""Property-based: whatever body and headers arrive, no 5xx and no invalid update accepted."""

from __future__ import annotations

import asyncio
import http.client
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scoreboard.intake.auth import issue_token
from tests.conftest import JWT_SECRET, RABBITMQ_URL, REDIS_URL, remove_keys, remove_queues
from tests.processes import Processes, WebProcess

USER = "prop-user"
MAX_INCREMENT = 1000
TOKEN = issue_token(JWT_SECRET, USER, "Prop", ttl_seconds=3600)


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebProcess]:
    """One web node for all examples, with its own prefix and queue, removed afterwards."""
    name = f"sbtest-{uuid.uuid4().hex[:12]}"
    env = {
        "REDIS_URL": REDIS_URL,
        "RABBITMQ_URL": RABBITMQ_URL,
        "JWT_SECRET": JWT_SECRET,
        "REDIS_KEY_PREFIX": f"{name}:",
        "QUEUE_NAME": name,
        "RATE_LIMIT": "1000000/minute",
        "MAX_SCORE_INCREMENT": str(MAX_INCREMENT),
    }
    with Processes(Path(tmp_path_factory.mktemp("props"))) as processes:
        yield processes.start_web(env)
    remove_keys(f"{name}:")
    asyncio.run(remove_queues(name))


def examples(count: int) -> settings:
    # The web fixture is one server for the whole module, so sharing it between examples is fine.
    return settings(
        max_examples=count,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )


def post(web: WebProcess, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", web.port, timeout=10)
    try:
        connection.request("POST", "/api/score/update", body=body, headers=headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        connection.close()


def is_valid_update(document: Any) -> bool:
    """The oracle, written from the contract rather than from the code under test."""
    if not isinstance(document, dict):
        return False
    user, increment = document.get("userId"), document.get("scoreIncrement")
    return user == USER and type(increment) is int and 1 <= increment <= MAX_INCREMENT


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
increments = st.one_of(
    st.integers(min_value=-5, max_value=MAX_INCREMENT + 5),
    st.integers(),
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=10),
    st.none(),
    json_values,
)
user_ids = st.one_of(st.just(USER), st.text(max_size=140), json_values)
documents = st.one_of(
    st.fixed_dictionaries({"userId": user_ids, "scoreIncrement": increments}),
    st.fixed_dictionaries(
        {"userId": user_ids, "scoreIncrement": increments},
        optional={"extra": json_values},
    ),
    json_values,
)


@settings(
    max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(document=documents)
def test_any_json_body(web: WebProcess, document: Any) -> None:
    body = json.dumps(document).encode()
    status, answer = post(web, body, {"Authorization": f"Bearer {TOKEN}"})
    assert status < 500, (status, answer)
    assert isinstance(answer, dict) and answer.get("status") in {"success", "error"}
    if is_valid_update(document):
        assert status == 200, (document, status, answer)
    else:
        assert status in {400, 403}, (document, status, answer)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=st.binary(max_size=300))
def test_any_bytes_as_body(web: WebProcess, body: bytes) -> None:
    status, answer = post(web, body, {"Authorization": f"Bearer {TOKEN}"})
    assert status < 500, (status, answer)
    try:
        document = json.loads(body)
    except ValueError:
        document = None
    assert (status == 200) == is_valid_update(document), (body, status, answer)


header_text = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=300)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    authorization=st.one_of(header_text, header_text.map(lambda t: f"Bearer {t}")),
    idempotency_key=st.one_of(st.none(), header_text),
)
def test_any_headers(web: WebProcess, authorization: str, idempotency_key: str | None) -> None:
    headers = {"Authorization": authorization}
    if idempotency_key is not None:
        headers["Idempotency-Key"] = idempotency_key
    body = json.dumps({"userId": USER, "scoreIncrement": 1}).encode()
    status, answer = post(web, body, headers)
    assert status < 500, (status, answer)
    assert status == 401, (authorization, status, answer)  # no forged token verifies
