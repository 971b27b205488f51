"""The OpenAPI document: valid 3.1, served without a token, and in step with the routes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import jsonschema_rs
import pytest
from aiohttp import web
from schemathesis.specs.openapi.definitions import OPENAPI_31

from scoreboard.api.openapi import openapi_document
from scoreboard.config import Settings
from scoreboard.web.app import SOCKETIO_PATH, create_app
from tests.conftest import JWT_SECRET

HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
PUBLIC = {("get", "/healthz"), ("get", "/api/openapi.json"), ("get", "/api/demo"), ("get", "/")}
PUBLIC |= {("get", "/api/docs"), ("get", "/api/asyncapi.json")}
PUBLIC |= {("get", "/readyz"), ("get", "/metrics")}  # probes and Prometheus (METRICS_TOKEN apart)


def registered_operations(app: web.Application) -> set[tuple[str, str]]:
    """(method, path) of every route, HEAD folded into GET, the Socket.IO endpoint left out."""
    operations = set()
    for resource in app.router.resources():
        if resource.canonical == f"/{SOCKETIO_PATH}/":
            continue
        for route in resource:
            method = route.method.lower()
            operations.add(("get" if method == "head" else method, resource.canonical))
    return operations


def documented_operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (method, path)
        for path, item in document["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }


def distributed(env: dict[str, str]) -> Settings:
    return Settings.from_env(env)


def single_process(env: dict[str, str]) -> Settings:
    return Settings.from_env({})


@pytest.mark.parametrize("mode", [distributed, single_process])
def test_every_registered_route_is_in_the_document_and_nothing_else(
    env: dict[str, str], mode: Callable[[dict[str, str]], Settings]
):
    settings = mode(env)
    app = create_app(settings)
    assert registered_operations(app) == documented_operations(openapi_document(settings))


def test_the_socketio_endpoint_is_described_in_prose():
    description = openapi_document(Settings())["info"]["description"]
    assert f"`/{SOCKETIO_PATH}/`" in description
    for words in (
        "leaderboardUpdate",
        "auth: {token:",
        "Authorization: Bearer",
        "connect_error",
        "`/api/asyncapi.json`",
    ):
        assert words in description
    payload = openapi_document(Settings())["components"]["schemas"]["LeaderboardUpdate"]
    assert payload["required"] == ["event", "version", "top10"]


def test_the_document_is_valid_openapi_3_1_with_valid_json_schemas():
    document = openapi_document(Settings())
    assert document["openapi"] == "3.1.0"
    jsonschema_rs.validator_for(OPENAPI_31).validate(document)
    for name, schema in document["components"]["schemas"].items():
        assert jsonschema_rs.meta.is_valid(schema), name
    for ref in references(document):
        _, _, kind, name = ref.split("/")
        assert name in document["components"][kind], f"dangling {ref}"


def references(node: Any) -> Iterator[str]:
    """Every $ref in the document."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from references(value)
    elif isinstance(node, list):
        for item in node:
            yield from references(item)


def test_every_operation_needing_a_token_says_so_and_documents_401():
    document = openapi_document(Settings())
    assert document["components"]["securitySchemes"]["bearerAuth"] == {
        **document["components"]["securitySchemes"]["bearerAuth"],
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
    }
    for method, path in documented_operations(document):
        operation = document["paths"][path][method]
        if (method, path) in PUBLIC or path.startswith("/static/"):
            assert operation["security"] == [], (method, path)
        else:
            assert operation["security"] == [{"bearerAuth": []}], (method, path)
            assert "401" in operation["responses"], (method, path)


def test_score_update_documents_the_idempotency_key_and_every_error():
    operation = openapi_document(Settings())["paths"]["/api/score/update"]["post"]
    [key] = operation["parameters"]
    assert (key["name"], key["in"]) == ("Idempotency-Key", "header")
    assert key["schema"]["maxLength"] == 255
    assert set(operation["responses"]) == {
        "200",
        "400",
        "401",
        "403",
        "409",
        "413",
        "415",
        "429",
        "503",
    }
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/ScoreUpdateRequest"}


def test_reads_document_their_query_bounds_and_errors():
    paths = openapi_document(Settings())["paths"]
    board = paths["/api/leaderboard"]["get"]
    bounds = {
        q["name"]: (q["schema"]["minimum"], q["schema"]["maximum"]) for q in board["parameters"]
    }
    assert bounds == {"limit": (1, 100), "offset": (0, 2**53 - 1)}
    assert {"200", "400", "401", "429", "503"} <= set(board["responses"])
    rank = paths["/api/users/{userId}/rank"]["get"]
    around = next(p for p in rank["parameters"] if p["name"] == "around")
    assert (around["schema"]["minimum"], around["schema"]["maximum"]) == (0, 50)
    assert {"200", "400", "401", "404", "429", "503"} <= set(rank["responses"])


def test_the_document_follows_the_configured_limits():
    settings = Settings.from_env(
        {"JWT_SECRET": JWT_SECRET, "MAX_SCORE_INCREMENT": "10", "READ_RATE_LIMIT": "5/second"}
    )
    document = openapi_document(settings)
    increment = document["components"]["schemas"]["ScoreUpdateRequest"]["properties"]
    assert increment["scoreIncrement"]["maximum"] == 10
    assert "5/second" in document["paths"]["/api/leaderboard"]["get"]["description"]


async def test_the_document_is_served_without_a_token(api):
    response = await api.get("/api/openapi.json")
    assert response.status == 200
    assert response.content_type == "application/json"
    assert (await response.json())["paths"].keys() == openapi_document(Settings())["paths"].keys()
