"""HTTPS enforcement, security headers, TLS serving and the Socket.IO server's limits."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import socketio
from aiohttp import web
from aiohttp.test_utils import TestClient

from scoreboard.config import Settings
from scoreboard.errors import ConfigError
from scoreboard.push.broadcast import Broadcaster
from scoreboard.web.app import SOCKETIO_PATH, create_app
from scoreboard.web.keys import STORE
from scoreboard.web.security import HSTS, is_loopback
from tests.certs import SelfSigned, self_signed_certificate
from tests.conftest import JWT_SECRET, TokenFactory, bearer
from tests.raw_http import exchange, get
from tests.test_score_api import queued_messages

PROJECT_ROOT = Path(__file__).resolve().parent.parent
URL = "/api/score/update"
HANDSHAKE = f"/{SOCKETIO_PATH}/?EIO=4&transport=polling"
HTTPS_REQUIRED = {"status": "error", "message": "HTTPS required"}
BROWSER_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
}
EVENT_TIMEOUT_SECONDS = 5.0
# Variables of the machine running the tests that would change how server.py starts.
SERVER_VARIABLES = (
    "REDIS_URL",
    "RABBITMQ_URL",
    "CLOUDAMQP_URL",
    "JWT_SECRET",
    "FORCE_HTTPS",
    "TLS_CERT_FILE",
    "TLS_KEY_FILE",
    "CORS_ALLOWED_ORIGINS",
)

ClientFactory = Callable[..., Any]


async def start(aiohttp_client: ClientFactory, env: Mapping[str, str], **server: Any) -> TestClient:
    return await aiohttp_client(create_app(Settings.from_env(env)), server_kwargs=server)


def score(user: str = "alice", increment: int = 1) -> dict[str, object]:
    return {"userId": user, "scoreIncrement": increment}


@asynccontextmanager
async def engine_session(
    api: TestClient, headers: Mapping[str, str] | None = None
) -> AsyncIterator[aiohttp.ClientResponse]:
    """An Engine.IO polling handshake; an accepted session is closed again afterwards."""
    response = await api.get(HANDSHAKE, headers=headers, allow_redirects=False)
    try:
        yield response
    finally:
        # An abandoned polling session would hold up the server's shutdown.
        if response.status == 200:
            await api.post(
                f"{HANDSHAKE}&sid={await session_id(response)}", data="1", headers=headers
            )


async def session_id(handshake: aiohttp.ClientResponse) -> str:
    return str(json.loads((await handshake.text())[1:])["sid"])


def non_loopback_address() -> str | None:
    """This machine's address on its default route, if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # connecting a UDP socket sends nothing
        except OSError:
            return None
        address = str(probe.getsockname()[0])
    return None if is_loopback(address) else address


# --- HTTPS enforcement ---------------------------------------------------------------------


@pytest.mark.parametrize("proto", ["http", "HTTP", "http, https", "ftp"])
async def test_plain_http_get_behind_a_proxy_is_redirected_to_https(aiohttp_client, env, proto):
    api = await start(aiohttp_client, env)
    response = await api.get(
        URL + "?a=1&b=two%20words", headers={"X-Forwarded-Proto": proto}, allow_redirects=False
    )
    assert response.status == 308
    assert response.headers["Location"] == f"https://127.0.0.1:{api.port}{URL}?a=1&b=two%20words"
    assert "Strict-Transport-Security" not in response.headers


@pytest.mark.parametrize(
    ("host", "location"),
    [
        ("scores.example.com", "https://scores.example.com/healthz/x?q=1"),
        ("scores.example.com:80", "https://scores.example.com/healthz/x?q=1"),
        ("scores.example.com:8443", "https://scores.example.com:8443/healthz/x?q=1"),
    ],
)
async def test_redirect_keeps_the_host_path_and_query(aiohttp_client, env, host, location):
    api = await start(aiohttp_client, env)
    response = await api.head(
        "/healthz/x?q=1",
        headers={"X-Forwarded-Proto": "http", "Host": host},
        allow_redirects=False,
    )
    assert (response.status, response.headers["Location"]) == (308, location)


@pytest.mark.parametrize("host", ["evil.example/x", "user@evil.example", "example.com:99999"])
async def test_a_malformed_host_is_refused_rather_than_redirected_to(aiohttp_client, env, host):
    api = await start(aiohttp_client, env)
    response = await api.get(
        URL, headers={"X-Forwarded-Proto": "http", "Host": host}, allow_redirects=False
    )
    assert (response.status, await response.json()) == (403, HTTPS_REQUIRED)
    assert "Location" not in response.headers


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
async def test_plain_http_other_methods_are_403_and_nothing_is_queued(
    aiohttp_client, env, make_token: TokenFactory, namespace, method
):
    api = await start(aiohttp_client, env)
    response = await api.request(
        method,
        URL,
        json=score(),
        headers={**bearer(make_token("alice")), "X-Forwarded-Proto": "http"},
    )
    assert response.status == 403
    assert await response.json() == HTTPS_REQUIRED
    assert await queued_messages(namespace) == []


async def test_https_behind_a_proxy_gets_hsts_and_normal_service(
    aiohttp_client, env, make_token: TokenFactory, namespace
):
    api = await start(aiohttp_client, env)
    response = await api.post(
        URL,
        json=score("alice", 3),
        headers={**bearer(make_token("alice")), "X-Forwarded-Proto": "https"},
    )
    assert response.status == 200
    assert (await response.json())["newScore"] == 3
    assert response.headers["Strict-Transport-Security"] == HSTS
    assert len(await queued_messages(namespace)) == 1


async def test_force_https_off_serves_plain_http_without_hsts(
    aiohttp_client, env, make_token: TokenFactory
):
    api = await start(aiohttp_client, {**env, "FORCE_HTTPS": "0"})
    plain = await api.post(
        URL, json=score(), headers={**bearer(make_token("alice")), "X-Forwarded-Proto": "http"}
    )
    assert plain.status == 200
    not_redirected = await api.get(URL, headers={"X-Forwarded-Proto": "http"})
    assert not_redirected.status == 405
    secure = await api.get("/healthz", headers={"X-Forwarded-Proto": "https"})
    assert "Strict-Transport-Security" not in secure.headers


async def test_direct_plain_http_from_loopback_is_allowed(aiohttp_client, env, make_token):
    api = await start(aiohttp_client, env)
    response = await api.post(URL, json=score(), headers=bearer(make_token("alice")))
    assert response.status == 200
    assert "Strict-Transport-Security" not in response.headers


async def test_direct_plain_http_from_another_address_is_sent_to_https(
    aiohttp_client, env, make_token: TokenFactory, namespace
):
    address = non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback address to serve on")
    api = await start(aiohttp_client, env, host=address)
    redirected = await api.get(URL, allow_redirects=False)
    assert redirected.status == 308
    assert redirected.headers["Location"] == f"https://{address}:{api.port}{URL}"
    refused = await api.post(URL, json=score(), headers=bearer(make_token("alice")))
    assert (refused.status, await refused.json()) == (403, HTTPS_REQUIRED)
    assert await queued_messages(namespace) == []
    # A proxy on that address that says the client used HTTPS is believed.
    proxied = await api.post(
        URL, json=score(), headers={**bearer(make_token("alice")), "X-Forwarded-Proto": "https"}
    )
    assert proxied.status == 200
    health = await api.get("/healthz")
    assert health.status == 200


@pytest.mark.parametrize("proto", [None, "http"])
async def test_healthz_answers_plain_http_from_anywhere(aiohttp_client, env, proto):
    api = await start(aiohttp_client, env)
    headers = {} if proto is None else {"X-Forwarded-Proto": proto}
    response = await api.get("/healthz", headers=headers, allow_redirects=False)
    assert response.status == 200


async def test_the_socketio_endpoint_is_covered_too(aiohttp_client, env):
    api = await start(aiohttp_client, env)
    plain = {"X-Forwarded-Proto": "http"}
    redirected = await api.get(HANDSHAKE, headers=plain, allow_redirects=False)
    assert redirected.status == 308
    assert redirected.headers["Location"] == f"https://127.0.0.1:{api.port}{HANDSHAKE}"
    refused = await api.post(HANDSHAKE, data="40", headers=plain)
    assert (refused.status, await refused.json()) == (403, HTTPS_REQUIRED)
    async with engine_session(api, {"X-Forwarded-Proto": "https"}) as secure:
        assert secure.status == 200
        assert (await secure.text()).startswith("0{")
        assert secure.headers["Strict-Transport-Security"] == HSTS


@pytest.mark.parametrize(
    ("address", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        ("192.0.2.2", False),
        ("10.0.0.1", False),
        ("::ffff:10.0.0.1", False),
        ("fe80::1%eth0", False),
        ("/run/scoreboard.sock", False),
        ("", False),
        (None, False),
    ],
)
def test_only_loopback_addresses_count_as_local(address, loopback):
    assert is_loopback(address) is loopback


# --- Security headers ------------------------------------------------------------------------


async def _boom(request: web.Request) -> web.Response:
    raise RuntimeError("secret internals /etc/passwd")


async def _moved(request: web.Request) -> web.Response:
    raise web.HTTPFound("/healthz")


async def _page(request: web.Request) -> web.Response:
    return web.Response(
        text="<!doctype html><title>board</title>",
        content_type="text/html",
        headers={"Content-Security-Policy": "default-src 'self'", "Cache-Control": "max-age=60"},
    )


@pytest.fixture
async def api_with_test_routes(aiohttp_client, settings: Settings) -> TestClient:
    """The real app plus routes that crash, redirect, and set their own policy."""
    app = create_app(settings)
    app.router.add_get("/api/boom", _boom)
    app.router.add_get("/api/moved", _moved)
    app.router.add_get("/page", _page)
    return await aiohttp_client(app)


def assert_security_headers(response: aiohttp.ClientResponse, *, api: bool = True) -> None:
    for name, value in BROWSER_HEADERS.items():
        assert response.headers.get(name) == value, (response.status, name)
    if api:
        assert response.headers.get("Cache-Control") == "no-store", response.status


async def test_security_headers_on_every_status(api_with_test_routes, make_token: TokenFactory):
    api = api_with_test_routes
    alice = bearer(make_token("alice"))
    responses = {
        200: await api.post(URL, json=score(), headers=alice),
        400: await api.post(URL, json=score("alice", 0), headers=alice),
        401: await api.post(URL, json=score()),
        404: await api.get("/api/nothing"),
        405: await api.get(URL),
        413: await api.post(URL, data="x" * 100_000, headers=alice),
        500: await api.get("/api/boom"),
        302: await api.get("/api/moved", allow_redirects=False),
        308: await api.get(URL, headers={"X-Forwarded-Proto": "http"}, allow_redirects=False),
        403: await api.post(URL, json=score(), headers={**alice, "X-Forwarded-Proto": "http"}),
    }
    for status, response in responses.items():
        assert response.status == status
        assert_security_headers(response)
    outside_api = await api.get("/nothing")
    assert outside_api.status == 404
    assert_security_headers(outside_api, api=False)
    assert_security_headers(await api.get("/healthz"), api=False)


async def test_a_crash_is_a_500_without_internals(api_with_test_routes):
    response = await api_with_test_routes.get("/api/boom")
    body = await response.text()
    assert response.status == 500
    assert json.loads(body) == {"status": "error", "message": "Internal server error"}
    assert "secret internals" not in body and "Traceback" not in body


async def test_a_handler_keeps_its_own_policy(api_with_test_routes):
    response = await api_with_test_routes.get("/page")
    assert response.headers["Content-Security-Policy"] == "default-src 'self'"
    assert response.headers["Cache-Control"] == "max-age=60"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


async def test_socketio_responses_carry_the_headers_too(aiohttp_client, env):
    api = await start(aiohttp_client, env)
    async with engine_session(api) as response:
        assert response.status == 200
        assert_security_headers(response, api=False)


async def test_no_response_names_the_server_software(api_with_test_routes, make_token):
    api = api_with_test_routes
    answers = [
        await api.post(URL, json=score(), headers=bearer(make_token("alice"))),
        await api.get("/api/nothing"),
        await api.get(URL),
        await api.get("/api/boom"),
        await api.get("/api/moved", allow_redirects=False),
        await api.get(URL, headers={"X-Forwarded-Proto": "http"}, allow_redirects=False),
        await api.get("/"),
        await api.get("/static/page.js"),
        await api.get("/healthz"),
        await api.get("/metrics"),
    ]
    async with engine_session(api) as handshake:
        answers.append(handshake)
        for response in answers:
            assert "Server" not in response.headers, (response.url, response.headers["Server"])
    upgrade = await exchange(
        api.server.port,
        get(
            f"/{SOCKETIO_PATH}/?EIO=4&transport=websocket",
            "Connection: Upgrade",
            "Upgrade: websocket",
            "Sec-WebSocket-Version: 13",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        ),
    )
    assert upgrade.status == 101
    assert "Server" not in upgrade.headers


# --- Socket.IO: CORS, message size, and clients cannot change anything ------------------------


@pytest.mark.parametrize(
    ("configured", "origin", "allowed"),
    [
        (None, "https://evil.example", False),
        (None, "null", False),
        ("https://evil.example", "https://evil.example", True),
        ("https://game.example, https://evil.example", "https://evil.example", True),
        ("https://game.example", "https://evil.example", False),
        ("https://game.example", "http://game.example", False),
        ("*", "https://evil.example", True),
    ],
)
async def test_cross_origin_socketio_handshake(aiohttp_client, env, configured, origin, allowed):
    extra = {} if configured is None else {"CORS_ALLOWED_ORIGINS": configured}
    api = await start(aiohttp_client, {**env, **extra})
    async with engine_session(api, {"Origin": origin}) as response:
        if allowed:
            assert response.status == 200
            assert response.headers["Access-Control-Allow-Origin"] == origin
        else:
            assert response.status == 400
            assert "Access-Control-Allow-Origin" not in response.headers


@pytest.mark.parametrize(
    ("scheme", "proto", "allowed"),
    [("http", None, True), ("https", "https", True), ("http", "https", False)],
)
async def test_same_origin_is_allowed_by_default(aiohttp_client, env, scheme, proto, allowed):
    api = await start(aiohttp_client, env)
    headers = {"Origin": f"{scheme}://127.0.0.1:{api.port}"}
    if proto is not None:
        headers["X-Forwarded-Proto"] = proto
    async with engine_session(api, headers) as response:
        assert (response.status == 200) is allowed


class EventRecorder:
    """A Socket.IO client that records every event it receives, whatever its name."""

    def __init__(self) -> None:
        self.client = socketio.AsyncClient(reconnection=False)
        self.events: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self.disconnected = asyncio.Event()
        self.client.on("*", self._received)
        self.client.on("disconnect", self._disconnected)

    async def _received(self, event: str, *args: Any) -> None:
        self.events.put_nowait((event, args[0] if len(args) == 1 else args))

    async def _disconnected(self, *reason: Any) -> None:
        self.disconnected.set()

    async def connect(self, api: TestClient, token: str, transport: str = "websocket") -> None:
        await self.client.connect(
            f"http://127.0.0.1:{api.port}",
            auth={"token": token},
            transports=[transport],
            socketio_path=SOCKETIO_PATH,
            wait_timeout=EVENT_TIMEOUT_SECONDS,
        )

    async def next_event(self) -> tuple[str, Any]:
        async with asyncio.timeout(EVENT_TIMEOUT_SECONDS):
            return await self.events.get()


@pytest.fixture
async def single_process_api(aiohttp_client) -> TestClient:
    """The app in single-process mode, whose in-process worker broadcasts real updates."""
    return await start(aiohttp_client, {"JWT_SECRET": JWT_SECRET})


async def test_nothing_a_client_emits_reaches_others_or_the_board(
    single_process_api, make_token: TokenFactory
):
    api = single_process_api
    watcher, mallory = EventRecorder(), EventRecorder()
    await watcher.connect(api, make_token("watcher"))
    await mallory.connect(api, make_token("mallory"))
    try:
        snapshot = await watcher.next_event()
        assert snapshot[0] == "leaderboardUpdate"
        assert (await mallory.next_event())[0] == "leaderboardUpdate"
        board_before = Broadcaster.payload(await api.server.app[STORE].leaderboard())

        forged = {
            "event": "leaderboardUpdate",
            "version": 999,
            "top10": [{"userId": "mallory", "username": "Mallory", "score": 10**9}],
        }
        await mallory.client.emit("leaderboardUpdate", forged)
        await mallory.client.emit("scoreUpdate", score("mallory", 10**6))
        await mallory.client.emit("message", "hello everyone")
        await mallory.client.send({"top10": []})
        # No handler acknowledges anything; the wait also lets the server take every emit above.
        with pytest.raises(socketio.exceptions.TimeoutError):
            await mallory.client.call("leaderboardUpdate", forged, timeout=1)

        assert watcher.events.empty() and mallory.events.empty()
        board_after = Broadcaster.payload(await api.server.app[STORE].leaderboard())
        assert board_after == board_before
        # The watcher still listens: the next thing it hears is a real update.
        posted = await api.post(URL, json=score("bob", 7), headers=bearer(make_token("bob")))
        assert posted.status == 200
        event, payload = await watcher.next_event()
        assert event == "leaderboardUpdate"
        assert [(e["userId"], e["score"]) for e in payload["top10"]] == [("bob", 7)]
    finally:
        await mallory.client.disconnect()
        await watcher.client.disconnect()


async def test_handshake_announces_the_small_maximum_payload(aiohttp_client, env):
    api = await start(aiohttp_client, env)
    async with engine_session(api) as response:
        assert json.loads((await response.text())[1:])["maxPayload"] == 4096


async def test_an_oversized_websocket_message_drops_only_its_sender(
    single_process_api, make_token: TokenFactory
):
    api = single_process_api
    watcher, mallory = EventRecorder(), EventRecorder()
    await watcher.connect(api, make_token("watcher"))
    await mallory.connect(api, make_token("mallory"))
    try:
        await watcher.next_event()
        await mallory.client.emit("leaderboardUpdate", "x" * 10_000)
        async with asyncio.timeout(EVENT_TIMEOUT_SECONDS):
            await mallory.disconnected.wait()
        assert not watcher.disconnected.is_set()
        assert (await api.get("/healthz")).status == 200
        posted = await api.post(URL, json=score("bob", 2), headers=bearer(make_token("bob")))
        assert posted.status == 200
        event, payload = await watcher.next_event()
        assert (event, payload["top10"][0]["userId"]) == ("leaderboardUpdate", "bob")
    finally:
        await mallory.client.disconnect()
        await watcher.client.disconnect()


async def test_an_oversized_polling_message_is_refused(aiohttp_client, env, make_token):
    api = await start(aiohttp_client, env)
    async with engine_session(api) as handshake:
        session = f"{HANDSHAKE}&sid={await session_id(handshake)}"
        too_big = "40" + json.dumps({"token": make_token("alice"), "pad": "x" * 5000})
        # Like a real client, keep a long-poll open: the server closes the session through it.
        poll, response = await asyncio.gather(api.get(session), api.post(session, data=too_big))
        assert response.status == 400
        assert (poll.status, await poll.text()) == (200, "1")  # Engine.IO "close"
        assert (await api.get("/healthz")).status == 200


# --- TLS served by server.py itself ----------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def server_env(overrides: Mapping[str, str]) -> dict[str, str]:
    """This machine's environment without the service's variables, plus `overrides`."""
    env = {k: v for k, v in os.environ.items() if k not in SERVER_VARIABLES}
    return {**env, "PYTHONUNBUFFERED": "1", **overrides}


@contextmanager
def https_server(cert: SelfSigned, log_path: Path) -> Iterator[str]:
    """server.py in single-process mode serving TLS itself; yields its https:// base URL."""
    port = free_port()
    env = server_env(
        {
            "PORT": str(port),
            "JWT_SECRET": JWT_SECRET,
            "TLS_CERT_FILE": str(cert.cert_file),
            "TLS_KEY_FILE": str(cert.key_file),
        }
    )
    base = f"https://127.0.0.1:{port}"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "server.py"],
            cwd=PROJECT_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_healthy(process, f"{base}/healthz", cert, log_path)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_healthy(
    process: subprocess.Popen[bytes], url: str, cert: SelfSigned, log_path: Path
) -> None:
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=cert.client_context())
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            with opener.open(url, timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"server.py did not serve HTTPS:\n{log_path.read_text()}")
        time.sleep(0.05)


async def test_server_serves_https_itself(tmp_path: Path, make_token: TokenFactory):
    cert = self_signed_certificate(tmp_path)
    with https_server(cert, tmp_path / "web.log") as base:
        connector = aiohttp.TCPConnector(ssl=cert.client_context())
        async with aiohttp.ClientSession(connector=connector) as session:
            async with session.post(
                f"{base}{URL}", json=score("alice", 4), headers=bearer(make_token("alice"))
            ) as response:
                assert response.status == 200
                assert (await response.json())["newScore"] == 4
                assert response.headers["Strict-Transport-Security"] == HSTS
                assert_security_headers(response)
            # A browser page on this very origin may open the socket (Origin is https://…).
            async with session.get(f"{base}{HANDSHAKE}", headers={"Origin": base}) as handshake:
                assert handshake.status == 200
                assert handshake.headers["Access-Control-Allow-Origin"] == base
                sid = await session_id(handshake)
            await session.post(f"{base}{HANDSHAKE}&sid={sid}", data="1", headers={"Origin": base})
    assert "Traceback" not in (tmp_path / "web.log").read_text()


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"TLS_CERT_FILE": "missing.pem", "TLS_KEY_FILE": "key.pem"}, "TLS_CERT_FILE"),
        ({"TLS_CERT_FILE": "cert.pem", "TLS_KEY_FILE": "missing.pem"}, "TLS_KEY_FILE"),
        ({"TLS_CERT_FILE": "cert.pem", "TLS_KEY_FILE": "cert.pem"}, "must hold a PEM"),
        ({"TLS_CERT_FILE": "cert.pem"}, "TLS_CERT_FILE is set but TLS_KEY_FILE is not"),
    ],
)
def test_unusable_tls_files_stop_start_up_with_a_clear_message(tmp_path, files, message):
    self_signed_certificate(tmp_path)
    env = server_env(
        {"PORT": str(free_port()), "JWT_SECRET": JWT_SECRET}
        | {name: str(tmp_path / file) for name, file in files.items()}
    )
    finished = subprocess.run(
        [sys.executable, "server.py"],
        cwd=PROJECT_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert finished.returncode == 1
    assert "configuration error:" in finished.stderr and message in finished.stderr
    assert "Traceback" not in finished.stderr + finished.stdout


# --- Settings --------------------------------------------------------------------------------


def test_security_defaults_are_strict():
    settings = Settings.from_env({})
    assert settings.force_https is True
    assert (settings.tls_cert_file, settings.tls_key_file) == (None, None)
    assert settings.cors_allowed_origins == ()


@pytest.mark.parametrize(
    ("raw", "value"),
    [("0", False), ("false", False), ("OFF", False), ("no", False), ("1", True), ("True", True)],
)
def test_force_https_reads_a_flag(raw, value):
    assert Settings.from_env({"FORCE_HTTPS": raw}).force_https is value


def test_force_https_refuses_anything_else():
    with pytest.raises(ConfigError, match="FORCE_HTTPS"):
        Settings.from_env({"FORCE_HTTPS": "maybe"})


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TLS_CERT_FILE": "/c.pem"}, "TLS_CERT_FILE is set but TLS_KEY_FILE is not"),
        ({"TLS_KEY_FILE": "/k.pem"}, "TLS_KEY_FILE is set but TLS_CERT_FILE is not"),
    ],
)
def test_tls_files_come_in_pairs(env, message):
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env)


def test_tls_files_are_read():
    settings = Settings.from_env({"TLS_CERT_FILE": "/c.pem", "TLS_KEY_FILE": "/k.pem"})
    assert (settings.tls_cert_file, settings.tls_key_file) == ("/c.pem", "/k.pem")


def test_openssl_ca_bundle_variable_is_not_mistaken_for_the_server_certificate():
    settings = Settings.from_env({"SSL_CERT_FILE": "/etc/ssl/certs/ca-certificates.crt"})
    assert settings.tls_cert_file is None


@pytest.mark.parametrize(
    ("raw", "origins"),
    [
        ("*", ("*",)),
        ("https://game.example", ("https://game.example",)),
        (
            " https://game.example , http://localhost:3000 ",
            ("https://game.example", "http://localhost:3000"),
        ),
        ("HTTPS://Game.Example", ("https://game.example",)),
        (" , ", ()),
    ],
)
def test_cors_allowed_origins_are_read(raw, origins):
    assert Settings.from_env({"CORS_ALLOWED_ORIGINS": raw}).cors_allowed_origins == origins


@pytest.mark.parametrize(
    "raw",
    [
        "game.example",
        "https://game.example/",
        "https://game.example/path",
        "https://game.example?x=1",
        "ftp://game.example",
        "https://user@game.example",
        "https://*.game.example",
        "*, https://game.example",
    ],
)
def test_cors_allowed_origins_must_be_origins(raw):
    with pytest.raises(ConfigError, match="CORS_ALLOWED_ORIGINS"):
        Settings.from_env({"CORS_ALLOWED_ORIGINS": raw})
