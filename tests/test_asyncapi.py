"""The AsyncAPI document: valid AsyncAPI 3.0, served without a token, and in step with what the
server really handles and sends."""

from __future__ import annotations

import asyncio
import copy
import json
from typing import Any

import aiohttp
import jsonschema_rs
import pytest
import socketio

from scoreboard.api.asyncapi import asyncapi_document
from scoreboard.config import Settings
from scoreboard.intake.auth import issue_token
from scoreboard.web.app import SOCKETIO_PATH, create_app
from scoreboard.web.keys import SOCKETIO
from tests.conftest import JWT_SECRET, TokenFactory, bearer
from tests.processes import PROJECT_ROOT, WebProcess
from tests.test_end_to_end import EVENT_TIMEOUT_SECONDS, post_score
from tests.test_openapi import references

SPECS = PROJECT_ROOT / "tests" / "js" / "node_modules" / "@asyncapi" / "specs"
Document = dict[str, Any]


@pytest.fixture(scope="module")
def document() -> Document:
    return asyncapi_document()


def follow(document: Document, node: Any) -> Any:
    """What `node` is, its $ref followed within the document."""
    while isinstance(node, dict) and "$ref" in node:
        target: Any = document
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def names(document: Document, refs: list[Any]) -> list[str]:
    return [follow(document, ref)["name"] for ref in refs]


def sent_by_server(document: Document) -> set[str]:
    """The names of the messages the server sends: on its own, or as a reply."""
    sent: set[str] = set()
    for operation in document["operations"].values():
        if operation["action"] == "send":
            sent.update(names(document, operation["messages"]))
        sent.update(names(document, operation.get("reply", {}).get("messages", [])))
    return sent


def replies_to(document: Document, event: str) -> list[str]:
    """The names of the replies the document declares for the client's `event`."""
    [operation] = [
        operation
        for operation in document["operations"].values()
        if names(document, operation["messages"]) == [event]
    ]
    return names(document, operation["reply"]["messages"])


def strict(node: Any) -> Any:
    """A copy of the schemas in which an object may hold only the properties it declares."""
    if isinstance(node, dict):
        copied = {key: strict(value) for key, value in node.items()}
        if "properties" in copied:
            copied["additionalProperties"] = False
        return copied
    if isinstance(node, list):
        return [strict(item) for item in node]
    return copy.deepcopy(node)


def payload_validator(document: Document, message: str) -> jsonschema_rs.Validator:
    """The payload schema of `message`, strict, with the document's schemas to refer to."""
    payload = document["components"]["messages"][message]["payload"]
    root = {**payload, "components": {"schemas": strict(document["components"]["schemas"])}}
    return jsonschema_rs.validator_for(root)


async def test_the_served_document_is_valid_asyncapi_3_0(api, document: Document) -> None:
    schema_file = SPECS / "schemas" / "3.0.0.json"
    if not schema_file.is_file():
        pytest.fail("@asyncapi/specs is missing: run `npm ci --prefix tests/js`", pytrace=False)
    response = await api.get("/api/asyncapi.json")  # no token
    assert response.status == 200
    assert response.content_type == "application/json"
    served = await response.json()
    assert served == document
    jsonschema_rs.validator_for(json.loads(schema_file.read_text())).validate(served)
    for name, schema in served["components"]["schemas"].items():
        assert jsonschema_rs.meta.is_valid(schema), name
    for ref in references(served):
        follow(served, {"$ref": ref})  # a dangling reference raises KeyError


def test_the_server_handles_exactly_the_events_the_document_says_it_receives(
    document: Document,
) -> None:
    received = {
        name
        for operation in document["operations"].values()
        if operation["action"] == "receive"
        for name in names(document, operation["messages"])
    }
    handlers = create_app(Settings.from_env({}))[SOCKETIO].handlers["/"]
    assert set(handlers) - {"disconnect"} == received


async def refusal_of(url: str, auth: dict[str, Any]) -> Any:
    """The payload of the connect_error a handshake with `auth` gets."""
    client = socketio.AsyncClient(reconnection=False)
    refusals: asyncio.Queue[Any] = asyncio.Queue()
    client.on("connect_error", refusals.put_nowait)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(
            url, auth=auth, socketio_path=SOCKETIO_PATH, wait_timeout=EVENT_TIMEOUT_SECONDS
        )
    return await asyncio.wait_for(refusals.get(), EVENT_TIMEOUT_SECONDS)


async def test_every_message_the_server_sends_matches_its_payload_in_the_document(
    web: WebProcess, http: aiohttp.ClientSession, make_token: TokenFactory, document: Document
) -> None:
    admin = issue_token(JWT_SECRET, "root", extra_claims={"role": "admin"})
    for board in ("cup", "daily"):
        url = f"{web.url}/api/admin/boards/{board}"
        async with http.put(url, json={"name": board.title()}, headers=bearer(admin)) as made:
            assert made.status in (200, 201), await made.text()
    viewer = make_token("viewer")
    received: list[tuple[str, Any]] = []  # (message name, payload), as the client got them
    for auth in ({"token": "not-a-jwt"}, {"token": viewer, "boards": ["global", "nope"]}):
        received.append(("connect_error", await refusal_of(web.url, auth)))

    client = socketio.AsyncClient(reconnection=False)
    updates: asyncio.Queue[Any] = asyncio.Queue()
    client.on("leaderboardUpdate", updates.put_nowait)
    await client.connect(
        web.url,
        auth={"token": viewer, "boards": ["global", "cup"]},
        socketio_path=SOCKETIO_PATH,
        wait_timeout=EVENT_TIMEOUT_SECONDS,
    )
    try:
        for event, payload in (
            ("subscribe", {"boards": ["daily"]}),
            ("subscribe", {"boards": ["nope"]}),
            ("subscribe", {"boards": "daily"}),
            ("unsubscribe", {"boards": ["daily"]}),
            ("unsubscribe", {"boards": [1]}),
        ):
            ack = await client.call(event, payload, timeout=EVENT_TIMEOUT_SECONDS)
            # The document says which payloads are malformed; the server refuses just those.
            well_formed = payload_validator(document, event).is_valid(payload)
            assert (ack["status"] == "success") == (well_formed and payload != {"boards": ["nope"]})
            received.append((event, ack))
        await post_score(http, web, make_token("alice", "Alice"), "alice", 5)
        async with http.post(
            f"{web.url}/api/boards/cup/scores",
            json={"userId": "bob", "score": 3},
            headers=bearer(make_token("bob", "Bob")),
        ) as posted:
            assert posted.status == 200, await posted.text()
        pushes: list[Any] = []
        async with asyncio.timeout(EVENT_TIMEOUT_SECONDS):
            while sum(1 for push in pushes if push["top10"]) < 2:  # both posts pushed
                pushes.append(await updates.get())
    finally:
        await client.disconnect()
    assert {push.get("boardId", "global") for push in pushes} == {"global", "cup", "daily"}
    received += [("leaderboardUpdate", push) for push in pushes]

    server_sends = sent_by_server(document)
    seen: set[str] = set()
    for name, payload in received:
        # An acknowledgement is one of the replies of the event it answers.
        candidates = [name] if name in server_sends else replies_to(document, name)
        matching = [c for c in candidates if payload_validator(document, c).is_valid(payload)]
        assert len(matching) == 1, (name, payload, candidates)
        seen.update(matching)
    assert seen == server_sends, "the document declares a message the server never sent here"
