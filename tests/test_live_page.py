"""GET /, its static files and GET /api/demo over HTTP; the browser tests are in test_browser.py."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable

import pytest
from aiohttp.test_utils import TestClient

from scoreboard.config import Settings
from scoreboard.intake.auth import TokenVerifier
from scoreboard.web.app import create_app
from scoreboard.web.demo import issue_demo_token
from scoreboard.web.static_files import STATIC_FILES
from tests.conftest import JWT_SECRET
from tests.processes import PROJECT_ROOT

STATIC_DIR = PROJECT_ROOT / "scoreboard" / "web" / "static"


@pytest.fixture
async def single_process_api(aiohttp_client: Callable) -> TestClient:
    """The single-process mode with a generated secret, as ./scripts/serve runs it."""
    return await aiohttp_client(create_app(Settings.from_env({})))


async def test_the_page_is_html_with_a_policy_that_allows_only_this_site(api):
    response = await api.get("/", headers={"Host": "scores.example:8443"})
    assert response.status == 200
    assert response.content_type == "text/html"
    policy = response.headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["default-src"] == "'none'"
    [import_map] = re.findall(r'<script type="importmap">(.*?)</script>', await response.text())
    digest = base64.b64encode(hashlib.sha256(import_map.encode()).digest()).decode()
    assert directives["script-src"] == f"'self' 'sha256-{digest}'"
    assert directives["style-src"] == "'self'"
    assert directives["connect-src"] == "'self' ws://scores.example:8443 wss://scores.example:8443"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in policy
    assert response.headers["X-Frame-Options"] == "DENY"


async def test_a_strange_host_header_is_kept_out_of_the_policy(api):
    response = await api.get("/", headers={"Host": "evil; script-src *"})
    policy = response.headers["Content-Security-Policy"]
    assert "connect-src 'self';" in policy
    assert "evil" not in policy


async def test_the_page_has_no_inline_script_but_its_import_map_and_loads_only_served_files(api):
    html = await (await api.get("/")).text()
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", html, re.S)
    [import_map] = [json.loads(body) for attributes, body in scripts if "importmap" in attributes]
    for module in import_map["imports"].values():
        assert module.startswith("/static/") and module.removeprefix("/static/") in STATIC_FILES
    code = [(attributes, body) for attributes, body in scripts if "importmap" not in attributes]
    assert code, "the page loads its scripts"
    for attributes, body in code:
        assert 'src="/static/' in attributes and body.strip() == ""
    assert "<style" not in html and " style=" not in html
    assert not re.search(r"\son[a-z]+=", html), "no inline event handlers"
    for name in re.findall(r'(?:src|href)="/static/([^"]+)"', html):
        assert name in STATIC_FILES
        assert (await api.get(f"/static/{name}")).status == 200


@pytest.mark.parametrize(("name", "content_type"), sorted(STATIC_FILES.items()))
async def test_static_files_are_served_with_their_type(api, name: str, content_type: str):
    response = await api.get(f"/static/{name}")
    assert response.status == 200
    assert response.content_type == content_type
    assert await response.read() == (STATIC_DIR / name).read_bytes()


@pytest.mark.parametrize(
    "name",
    [
        "VENDORED.md",
        "VENDORED.json",
        "index.html",
        "api-docs.html",
        "licenses%2Fswagger-ui-dist%2FLICENSE",
        "..%2Fpage.py",
        "nothing.js",
    ],
)
async def test_anything_else_under_static_is_404(api, name: str):
    response = await api.get(f"/static/{name}")
    assert (response.status, await response.json()) == (
        404,
        {"status": "error", "message": "Not found"},
    )


async def test_distributed_mode_offers_no_demo_token(api):
    response = await api.get("/api/demo")
    assert response.status == 404
    assert (await response.json())["status"] == "error"


async def test_single_process_mode_offers_a_working_demo_token(single_process_api):
    response = await single_process_api.get("/api/demo")
    assert response.status == 200
    body = await response.json()
    assert (body["status"], body["userId"], body["username"]) == ("success", "demo", "Demo Player")
    posted = await single_process_api.post(
        "/api/score/update",
        json={"userId": "demo", "scoreIncrement": 4},
        headers={"Authorization": f"Bearer {body['token']}"},
    )
    assert (posted.status, (await posted.json())["newScore"]) == (200, 4)


async def test_a_configured_secret_means_no_demo_token(aiohttp_client: Callable):
    settings = Settings.from_env({"JWT_SECRET": JWT_SECRET})
    api = await aiohttp_client(create_app(settings))
    assert (await api.get("/api/demo")).status == 404


def test_the_demo_token_is_for_the_demo_user_and_signed_with_the_generated_secret():
    settings = Settings.from_env({})
    token = issue_demo_token(settings)
    assert token is not None
    identity = TokenVerifier(settings.jwt_secret.value).verify(token)
    assert (identity.subject, identity.username) == ("demo", "Demo Player")
