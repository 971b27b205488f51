"""The API declared once: queries parsed by one rule from their declarations, routes and the
reference derived from the endpoint table."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest
from multidict import MultiDict

from scoreboard.api import models, queries
from scoreboard.api.endpoints import ENDPOINTS
from scoreboard.api.reference import api_reference
from scoreboard.config import Settings
from scoreboard.errors import InvalidQuery
from scoreboard.web.app import create_app
from tests.conftest import JWT_SECRET

DECLARED_QUERIES = sorted(
    {endpoint.query for endpoint in ENDPOINTS if endpoint.query is not None},
    key=lambda model: model.__name__,
)
ODD = ["", "05", "+5", "-1", "5e1", " 5", "5 ", "\u00b2", "\u0663", "\uff15", "1_0", "0x1"]
ODD.append("9" * 40)


@pytest.mark.parametrize("model", DECLARED_QUERIES, ids=lambda model: model.__name__)
def test_every_declared_integer_takes_plain_digits_in_its_range_and_nothing_else(model):
    for field in queries.integer_fields(model):
        for good in {field.low, field.high, (field.low + field.high) // 2}:
            parsed = queries.parse_query(model, MultiDict([(field.name, str(good))]))
            assert getattr(parsed, field.name) == good
        bad = [*ODD, str(field.low - 1), str(field.high + 1)]
        for value in bad:
            with pytest.raises(InvalidQuery, match=f"^{field.name} must be an integer from"):
                queries.parse_query(model, MultiDict([(field.name, value)]))
        with pytest.raises(InvalidQuery):
            queries.parse_query(model, MultiDict([(field.name, "1"), (field.name, "1")]))
        assert getattr(queries.parse_query(model, MultiDict()), field.name) == field.default


@pytest.mark.parametrize(
    "model",
    [model for model in DECLARED_QUERIES if queries.board_id_fields(model)],
    ids=lambda model: model.__name__,
)
def test_every_declared_board_parameter_takes_one_board_id_and_nothing_else(model):
    for field in queries.board_id_fields(model):
        for good in ("weekly", "0", "a_b-" + "c" * 60):
            parsed = queries.parse_query(model, MultiDict([(field.name, good)]))
            assert getattr(parsed, field.name) == good
        for bad in ("", "Weekly", "-weekly", "_a", "a" * 65, "week ly", "wéekly", "global\n"):
            with pytest.raises(InvalidQuery, match=f"^{field.name} must be a board id: 1 to 64"):
                queries.parse_query(model, MultiDict([(field.name, bad)]))
        with pytest.raises(InvalidQuery):
            queries.parse_query(model, MultiDict([(field.name, "a"), (field.name, "a")]))
        assert getattr(queries.parse_query(model, MultiDict()), field.name) is None


def test_undeclared_parameters_are_ignored():
    parsed = queries.parse_query(queries.BoardQuery, MultiDict([("page", "x"), ("limit", "3")]))
    assert (parsed.limit, parsed.offset) == (3, 0)


def test_every_declared_endpoint_is_a_route_and_every_route_is_declared():
    app = create_app(Settings.from_env({"JWT_SECRET": JWT_SECRET}))
    routes = {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None
        and route.method not in {"HEAD", "OPTIONS"}
        and not route.resource.canonical.startswith("/ws/")
    }
    assert routes == {(endpoint.method, endpoint.path) for endpoint in ENDPOINTS}


def test_the_answer_bodies_encode_as_declared():
    page = models.BoardPage(3, 1, (models.RankedEntry(1, "alice", "Alice", 5),))
    assert msgspec.json.decode(msgspec.json.encode(page)) == {
        "version": 3,
        "total": 1,
        "entries": [{"rank": 1, "userId": "alice", "username": "Alice", "score": 5}],
    }


def test_the_score_update_body_takes_the_deployments_largest_increment():
    body = models.score_update_request(7)
    decoder = msgspec.json.Decoder(body)
    assert decoder.decode(b'{"userId": "a", "scoreIncrement": 7}').score_increment == 7
    with pytest.raises(msgspec.ValidationError):
        decoder.decode(b'{"userId": "a", "scoreIncrement": 8}')


def test_docs_api_md_is_the_reference_the_declarations_give():
    written = (Path(__file__).parent.parent / "docs" / "api.md").read_text()
    assert written == api_reference(), "run: python -m scoreboard api-reference > docs/api.md"
