"""GET /api/docs over HTTP: its policy and the files it loads (Chromium: test_browser.py)."""

from __future__ import annotations

import re

from scoreboard.web.security import API_CONTENT_SECURITY_POLICY
from scoreboard.web.static_files import STATIC_FILES


async def test_the_reference_page_loads_only_served_files_under_a_policy_without_unsafe(api):
    response = await api.get("/api/docs")
    assert response.status == 200
    assert response.content_type == "text/html"
    policy = response.headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["connect-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in policy
    html = await response.text()
    assert "<style" not in html and not re.search(r"<script\b[^>]*>[^<]", html)
    loaded = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert {"/static/swagger-ui-bundle.js", "/static/swagger-ui.css"} <= set(loaded)
    for url in loaded:
        name = url.removeprefix("/static/")
        assert url.startswith("/static/") and name in STATIC_FILES, url
        assert (await api.get(url)).status == 200


async def test_other_responses_keep_the_strict_api_policy(api):
    response = await api.get("/api/openapi.json")
    assert response.headers["Content-Security-Policy"] == API_CONTENT_SECURITY_POLICY
