"""Bearer tokens: every attack refused, public keys and JWKS accepted, the settings checked."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import socket
import time
import uuid
from collections.abc import Callable
from typing import Any

import jwt
import pytest
import socketio
from aiohttp.test_utils import TestClient
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import RSAAlgorithm
from jwt.warnings import InsecureKeyLengthWarning

from scoreboard.config import Settings
from scoreboard.errors import AuthenticationFailed, ConfigError
from scoreboard.intake.auth import (
    JWKS_MIN_REFRESH_SECONDS,
    JwksKeySet,
    TokenVerifier,
    issue_token,
    public_key_from_pem,
)
from scoreboard.intake.verified_tokens import VerifiedTokens
from scoreboard.web.app import create_app
from tests.conftest import JWT_SECRET, bearer
from tests.jwks_server import JwksServer, SigningKey

URL = "/api/score/update"
AUTH_FAILED = {"status": "error", "message": "Authentication failed"}
LEEWAY = 30  # JWT_LEEWAY_SECONDS' default

RSA_KEY = SigningKey.rsa("rsa-1")
RSA_NEXT = SigningKey.rsa("rsa-2")
EC_KEY = SigningKey.ec("ec-1")
IMPOSTOR = SigningKey.rsa("rsa-1")  # claims the kid of RSA_KEY, signs with its own key
PEM = RSA_KEY.public_pem()

Variables = dict[str, str | None]  # None removes the variable from the test's environment
SECRET_ONLY: Variables = {}
PUBLIC_KEY_TOO: Variables = {"JWT_PUBLIC_KEY": PEM}
PUBLIC_KEY_ONLY: Variables = {"JWT_PUBLIC_KEY": PEM, "JWT_SECRET": None}
ISSUER: Variables = {"JWT_ISSUER": "https://auth.example"}
AUDIENCE: Variables = {"JWT_AUDIENCE": "scoreboard"}
EXP_OPTIONAL: Variables = {"JWT_REQUIRE_EXP": "0"}


def now() -> int:
    return int(time.time())


def claims(**extra: Any) -> dict[str, Any]:
    """Valid claims for alice; an argument set to None leaves that claim out."""
    base: dict[str, Any] = {"sub": "alice", "exp": now() + 3600, **extra}
    return {name: value for name, value in base.items() if value is not None}


def hs256(payload: dict[str, Any], key: str = JWT_SECRET, **headers: Any) -> str:
    return jwt.encode(payload, key, algorithm="HS256", headers=headers or None)


def forge(header: dict[str, Any], payload: dict[str, Any], sign: Callable[[bytes], bytes]) -> str:
    """A token built by hand, for what PyJWT itself refuses to produce."""

    def part(data: bytes) -> bytes:
        return base64.urlsafe_b64encode(data).rstrip(b"=")

    signing_input = part(json.dumps(header).encode()) + b"." + part(json.dumps(payload).encode())
    return (signing_input + b"." + part(sign(signing_input))).decode()


def hmac_with_public_key(message: bytes) -> bytes:
    return hmac.new(PEM.encode(), message, hashlib.sha256).digest()


def hmac_with_secret(message: bytes) -> bytes:
    return hmac.new(JWT_SECRET.encode(), message, hashlib.sha256).digest()


def no_signature(message: bytes) -> bytes:
    return b""


def with_settings(env: dict[str, str], variables: Variables) -> Settings:
    config = {**env, **{name: value for name, value in variables.items() if value is not None}}
    for name in [name for name, value in variables.items() if value is None]:
        config.pop(name, None)
    return Settings.from_env(config)


async def start(aiohttp_client: Callable, env: dict[str, str], variables: Variables) -> TestClient:
    """The real application, on real Redis and RabbitMQ, with `variables` applied to `env`."""
    return await aiohttp_client(create_app(with_settings(env, variables)))


async def status_of(api: TestClient, token: str, user: str = "alice") -> int:
    response = await api.post(
        URL, json={"userId": user, "scoreIncrement": 1}, headers=bearer(token)
    )
    if response.status == 401:
        assert await response.json() == AUTH_FAILED
    return response.status


# Each entry: the variables the deployment sets, and a function making the token it must refuse.
REFUSED: dict[str, tuple[Variables, Callable[[], str]]] = {
    "bad signature": (SECRET_ONLY, lambda: hs256(claims(), key="another-secret-" + "x" * 40)),
    "expired beyond the leeway": (SECRET_ONLY, lambda: hs256(claims(exp=now() - LEEWAY - 5))),
    "expired, leeway 0": ({"JWT_LEEWAY_SECONDS": "0"}, lambda: hs256(claims(exp=now() - 5))),
    "nbf beyond the leeway": (SECRET_ONLY, lambda: hs256(claims(nbf=now() + LEEWAY + 30))),
    "iat beyond the leeway": (SECRET_ONLY, lambda: hs256(claims(iat=now() + LEEWAY + 30))),
    "alg none": (SECRET_ONLY, lambda: forge({"alg": "none"}, claims(), no_signature)),
    "alg none, public key set": (
        PUBLIC_KEY_TOO,
        lambda: forge({"alg": "none"}, claims(), no_signature),
    ),
    "HS256 keyed with the public key PEM": (
        PUBLIC_KEY_ONLY,
        lambda: forge({"alg": "HS256", "typ": "JWT"}, claims(), hmac_with_public_key),
    ),
    "HS256 keyed with the public key PEM, secret set too": (
        PUBLIC_KEY_TOO,
        lambda: forge({"alg": "HS256", "typ": "JWT"}, claims(), hmac_with_public_key),
    ),
    "RS256 when only a secret is set": (SECRET_ONLY, lambda: RSA_KEY.token()),
    "RS256 from another key": (PUBLIC_KEY_TOO, lambda: IMPOSTOR.token()),
    "ES256 when the public key is RSA": (PUBLIC_KEY_TOO, lambda: EC_KEY.token()),
    "RS512 with the configured key": (
        PUBLIC_KEY_TOO,
        lambda: jwt.encode(claims(), RSA_KEY.private_key, algorithm="RS512"),
    ),
    "PS256 with the configured key": (
        PUBLIC_KEY_TOO,
        lambda: jwt.encode(claims(), RSA_KEY.private_key, algorithm="PS256"),
    ),
    "HS512 with the secret": (
        SECRET_ONLY,
        lambda: jwt.encode(claims(), JWT_SECRET + "x" * 40, algorithm="HS512"),
    ),
    "crit header": (
        SECRET_ONLY,
        lambda: hs256(claims(), crit=["urn:example:policy"], **{"urn:example:policy": "x"}),
    ),
    "crit b64, which PyJWT alone accepts": (
        SECRET_ONLY,
        lambda: forge({"alg": "HS256", "crit": ["b64"], "b64": True}, claims(), hmac_with_secret),
    ),
    "alg not a string": (
        PUBLIC_KEY_TOO,
        lambda: forge({"alg": ["RS256"], "kid": "x"}, claims(), no_signature),
    ),
    "kid not a string": (
        PUBLIC_KEY_TOO,
        lambda: forge({"alg": "HS256", "kid": 7}, claims(), lambda m: b"x"),
    ),
    "wrong iss": (ISSUER, lambda: hs256(claims(iss="https://evil.example"))),
    "missing iss": (ISSUER, lambda: hs256(claims())),
    "wrong aud": (AUDIENCE, lambda: hs256(claims(aud="another-service"))),
    "missing aud": (AUDIENCE, lambda: hs256(claims())),
    "missing exp": (SECRET_ONLY, lambda: hs256(claims(exp=None))),
    "missing sub": (SECRET_ONLY, lambda: hs256(claims(sub=None))),
    "missing sub, exp optional": (EXP_OPTIONAL, lambda: hs256(claims(sub=None, exp=None))),
    "expired, exp optional": (EXP_OPTIONAL, lambda: hs256(claims(exp=now() - LEEWAY - 5))),
}

ACCEPTED: dict[str, tuple[Variables, Callable[[], str]]] = {
    "expired within the leeway": (SECRET_ONLY, lambda: hs256(claims(exp=now() - 10))),
    "nbf within the leeway": (SECRET_ONLY, lambda: hs256(claims(nbf=now() + 10))),
    "RS256 with JWT_PUBLIC_KEY": (PUBLIC_KEY_ONLY, lambda: RSA_KEY.token()),
    "RS256 without kid": (PUBLIC_KEY_ONLY, lambda: RSA_KEY.sign(claims(), kid=None)),
    "ES256 with JWT_PUBLIC_KEY": (
        {"JWT_PUBLIC_KEY": EC_KEY.public_pem(), "JWT_SECRET": None},
        lambda: EC_KEY.token(),
    ),
    "HS256 beside a public key": (PUBLIC_KEY_TOO, lambda: hs256(claims())),
    "right iss": (ISSUER, lambda: hs256(claims(iss="https://auth.example"))),
    "right aud": (AUDIENCE, lambda: hs256(claims(aud="scoreboard"))),
    "aud list with ours": (AUDIENCE, lambda: hs256(claims(aud=["other", "scoreboard"]))),
    "aud when JWT_AUDIENCE is unset": (SECRET_ONLY, lambda: hs256(claims(aud="any-service"))),
    "missing exp, exp optional": (EXP_OPTIONAL, lambda: hs256(claims(exp=None))),
}


@pytest.mark.parametrize(("variables", "make_token"), REFUSED.values(), ids=list(REFUSED))
async def test_attacks_are_refused_with_401(aiohttp_client, env, variables, make_token):
    api = await start(aiohttp_client, env, variables)
    assert await status_of(api, make_token()) == 401


@pytest.mark.parametrize(("variables", "make_token"), ACCEPTED.values(), ids=list(ACCEPTED))
async def test_valid_tokens_are_accepted(aiohttp_client, env, variables, make_token):
    api = await start(aiohttp_client, env, variables)
    assert await status_of(api, make_token()) == 200


async def test_a_secret_generated_in_distributed_mode_signs_nothing(aiohttp_client, env):
    settings = with_settings(env, PUBLIC_KEY_ONLY)
    assert settings.jwt_secret_generated and settings.hs256_secret is None
    api = await aiohttp_client(create_app(settings))
    assert await status_of(api, issue_token(settings.jwt_secret.value, "alice")) == 401


def test_a_token_over_8_kib_is_refused_before_parsing():
    verifier = TokenVerifier(JWT_SECRET)
    assert verifier.verify(hs256(claims(pad="x" * 6000))).subject == "alice"
    with pytest.raises(AuthenticationFailed):
        verifier.verify(hs256(claims(pad="x" * 6200)))


async def test_a_remembered_token_is_still_refused_once_it_expires():
    verifier = TokenVerifier(JWT_SECRET, leeway_seconds=0)
    token = issue_token(JWT_SECRET, "alice", ttl_seconds=1)
    assert (await verifier.authenticate(token)).subject == "alice"
    assert (await verifier.authenticate(token)).subject == "alice"  # from memory now
    header, payload, signature = token.split(".")
    forged = f"{header}.{payload}.{signature[:-4]}AAAA"
    with pytest.raises(AuthenticationFailed):
        await verifier.authenticate(forged)
    await asyncio.sleep(1.1)
    with pytest.raises(AuthenticationFailed):
        await verifier.authenticate(token)
    with pytest.raises(AuthenticationFailed):
        verifier.verify(token)


def test_remembered_tokens_are_bounded_in_number_and_age():
    now = [1000.0]
    remembered: VerifiedTokens[str, str] = VerifiedTokens(
        max_entries=2, max_age_seconds=60, clock=lambda: now[0]
    )
    remembered.remember("t1", "alice", "key", None, expires_at=None)
    remembered.remember("t2", "bob", "key", None, expires_at=1010.0)
    remembered.remember("t3", "carol", "key", None, expires_at=None)
    assert remembered.get("t1") is None, "the oldest entry makes room"
    assert [remembered.get(t).identity for t in ("t2", "t3")] == ["bob", "carol"]  # type: ignore[union-attr]
    now[0] = 1010.0
    assert remembered.get("t2") is None, "gone at its exp"
    assert remembered.get("t3") is not None
    now[0] = 1060.0
    assert remembered.get("t3") is None, "gone after max_age_seconds"


def test_display_name_is_name_then_preferred_username_then_sub():
    verifier = TokenVerifier(public_key=public_key_from_pem(PEM))
    names = [
        verifier.verify(RSA_KEY.token("u1", name="Uno", preferred_username="uno")).username,
        verifier.verify(RSA_KEY.token("u2", preferred_username="dos")).username,
        verifier.verify(RSA_KEY.token("u3")).username,
    ]
    assert names == ["Uno", "dos", "u3"]


# JWKS: a real HTTP server on localhost publishes the keys.


@pytest.fixture
async def jwks(aiohttp_server) -> JwksServer:
    server = JwksServer()
    server.url = str((await aiohttp_server(server.app)).make_url("/jwks.json"))
    return server


def jwks_only(server: JwksServer) -> Variables:
    return {"JWKS_URL": server.url, "JWT_SECRET": None}


def stranger(kid: str | None = None) -> str:
    """A token under a made-up kid, as an attacker spraying kids would send."""
    return IMPOSTOR.sign(claims(), kid=kid or f"kid-{uuid.uuid4().hex}")


async def test_jwks_keys_with_known_kids_are_accepted(aiohttp_client, env, jwks):
    jwks.publish(RSA_KEY, EC_KEY)
    api = await start(aiohttp_client, env, jwks_only(jwks))
    assert await status_of(api, RSA_KEY.token()) == 200
    assert await status_of(api, EC_KEY.token()) == 200
    assert await status_of(api, IMPOSTOR.token()) == 401  # RSA_KEY's kid, another key
    assert await status_of(api, RSA_KEY.sign(claims(), kid=None)) == 401  # a JWKS key needs kid
    unhashable_alg = forge({"alg": ["RS256"], "kid": "rsa-1"}, claims(), no_signature)
    assert await status_of(api, unhashable_alg) == 401
    assert jwks.fetches == 1


async def test_requests_arriving_during_the_first_fetch_wait_for_it(aiohttp_client, env, jwks):
    jwks.publish(RSA_KEY)
    jwks.hang.clear()
    api = await start(aiohttp_client, env, jwks_only(jwks))
    statuses = asyncio.gather(*(status_of(api, RSA_KEY.token()) for _ in range(10)))
    await asyncio.sleep(0.2)
    jwks.hang.set()
    assert await statuses == [200] * 10
    assert jwks.fetches == 1


async def test_rotated_key_is_accepted_after_the_refresh_interval(aiohttp_client, env, jwks):
    jwks.publish(RSA_KEY)
    api = await start(aiohttp_client, env, jwks_only(jwks))
    assert await status_of(api, RSA_KEY.token()) == 200
    jwks.publish(RSA_KEY, RSA_NEXT)
    # The set was fetched a moment ago: the new kid waits for the interval to pass.
    assert await status_of(api, RSA_NEXT.token()) == 401
    await asyncio.sleep(JWKS_MIN_REFRESH_SECONDS + 0.1)
    assert await status_of(api, RSA_NEXT.token()) == 200
    assert await status_of(api, RSA_KEY.token()) == 200
    assert jwks.fetches == 2


async def test_unknown_kid_spray_fetches_the_set_once(aiohttp_client, env, jwks):
    jwks.publish(RSA_KEY)
    api = await start(aiohttp_client, env, jwks_only(jwks))
    concurrent = await asyncio.gather(*(status_of(api, stranger()) for _ in range(20)))
    sequential = [await status_of(api, stranger()) for _ in range(20)]
    assert concurrent + sequential == [401] * 40
    assert await status_of(api, RSA_KEY.token()) == 200
    assert jwks.fetches == 1


@pytest.mark.parametrize("failure", ["connection refused", "503", "not JSON", "not a JWKS"])
async def test_jwks_endpoint_down_is_401_not_500(aiohttp_client, env, jwks, failure):
    if failure == "connection refused":
        jwks.url = f"http://127.0.0.1:{_closed_port()}/jwks.json"
    jwks.status = 503 if failure == "503" else 200
    jwks.body = {"not JSON": "<html>", "not a JWKS": '{"keys": "none"}'}.get(failure)
    api = await start(aiohttp_client, env, jwks_only(jwks))
    assert await status_of(api, RSA_KEY.token()) == 401


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def connect(api: TestClient, token: str, refusals: list[Any]) -> socketio.AsyncClient:
    """A Socket.IO client connecting with `token`; what a refusal says goes to `refusals`."""
    client = socketio.AsyncClient(reconnection=False)
    client.on("connect_error", refusals.append)
    await client.connect(
        str(api.make_url("/")),
        auth={"token": token},
        socketio_path="/ws/scoreboard",
        transports=["websocket"],
        wait_timeout=5,
    )
    return client


async def test_socket_connect_verifies_jwks_tokens(aiohttp_client, env, jwks):
    jwks.publish(RSA_KEY)
    api = await start(aiohttp_client, env, jwks_only(jwks))
    refusals: list[Any] = []
    client = await connect(api, RSA_KEY.token(), refusals)
    assert client.connected
    await client.disconnect()
    with pytest.raises(socketio.exceptions.ConnectionError):
        await connect(api, stranger(), refusals)
    assert refusals == [{"message": "Authentication failed"}]


async def test_socket_connect_is_refused_while_jwks_is_down(aiohttp_client, env, jwks):
    jwks.status = 503
    api = await start(aiohttp_client, env, jwks_only(jwks))
    refusals: list[Any] = []
    with pytest.raises(socketio.exceptions.ConnectionError):
        await connect(api, RSA_KEY.token(), refusals)
    assert refusals == [{"message": "Authentication failed"}]
    assert jwks.fetches == 1


# The key set's timing, with intervals short enough to watch.


def verifier_for(jwks: JwksServer, **timing: float) -> TokenVerifier:
    return TokenVerifier(jwks=JwksKeySet(jwks.url, **timing))


async def test_spray_over_time_fetches_at_most_once_per_interval(jwks):
    jwks.publish(RSA_KEY)
    verifier = verifier_for(jwks, min_refresh_seconds=0.2)
    started = time.monotonic()
    while time.monotonic() - started < 1.0:
        with pytest.raises(AuthenticationFailed):
            await verifier.authenticate(stranger())
        await asyncio.sleep(0.01)
    intervals = (time.monotonic() - started) / 0.2
    assert 2 <= jwks.fetches <= int(intervals) + 1


async def test_a_stale_set_is_fetched_again_and_a_withdrawn_key_stops_verifying(jwks):
    jwks.publish(RSA_KEY)
    verifier = verifier_for(jwks, min_refresh_seconds=0.05, max_age_seconds=0.2)
    assert (await verifier.authenticate(RSA_KEY.token())).subject == "alice"
    jwks.publish(RSA_NEXT)
    await asyncio.sleep(0.3)
    with pytest.raises(AuthenticationFailed):
        await verifier.authenticate(RSA_KEY.token())
    assert (await verifier.authenticate(RSA_NEXT.token("bob"))).subject == "bob"
    assert jwks.fetches == 2


async def test_keys_in_hand_keep_working_while_jwks_is_down(jwks):
    jwks.publish(RSA_KEY)
    verifier = verifier_for(jwks, min_refresh_seconds=0.05, max_age_seconds=0.1)
    assert (await verifier.authenticate(RSA_KEY.token())).subject == "alice"
    jwks.status = 503
    await asyncio.sleep(0.2)
    assert (await verifier.authenticate(RSA_KEY.token())).subject == "alice"
    assert jwks.fetches == 2


async def test_a_hanging_jwks_endpoint_times_out(jwks):
    jwks.publish(RSA_KEY)
    jwks.hang.clear()
    verifier = verifier_for(jwks, timeout_seconds=0.2)
    started = time.monotonic()
    with pytest.raises(AuthenticationFailed):
        await verifier.authenticate(RSA_KEY.token())
    assert time.monotonic() - started < 2
    jwks.hang.set()


async def test_unusable_jwks_entries_are_skipped(jwks):
    weak = SigningKey.rsa("weak", bits=1024)
    p384 = SigningKey("p384", "ES384", ec.generate_private_key(ec.SECP384R1()))
    wrong_alg = SigningKey("rs512", "RS512", RSA_NEXT.private_key)
    for_encryption = SigningKey("enc", "RS256", RSA_NEXT.private_key)
    private = SigningKey("private", "RS256", RSA_NEXT.private_key)
    hmac_secret = "jwks-published-hmac-secret-" + "x" * 40
    jwks.publish(
        RSA_KEY,
        weak,
        p384,
        wrong_alg,
        for_encryption.jwk(use="enc"),
        {**RSAAlgorithm.to_jwk(private.private_key, as_dict=True), "kid": "private"},
        {"kty": "oct", "kid": "hmac", "k": base64.urlsafe_b64encode(hmac_secret.encode()).decode()},
        {**RSA_NEXT.jwk(), "kid": None},
        "not an object",
    )
    verifier = verifier_for(jwks)
    assert (await verifier.authenticate(RSA_KEY.token())).subject == "alice"
    with pytest.warns(InsecureKeyLengthWarning):
        weak_token = weak.token()
    refused = [
        weak_token,
        p384.token(),
        wrong_alg.token(),
        RSA_NEXT.sign(claims(), kid="rs512"),
        for_encryption.token(),
        private.token(),
        hs256(claims(), key=hmac_secret, kid="hmac"),
    ]
    for token in refused:
        with pytest.raises(AuthenticationFailed):
            await verifier.authenticate(token)


# Settings: the new variables, and a ConfigError naming whichever is wrong.

DISTRIBUTED = {
    "REDIS_URL": "redis://localhost:6379/0",
    "RABBITMQ_URL": "amqp://guest:guest@localhost:5672/",
    "JWT_SECRET": JWT_SECRET,
}
NO_SECRET = {name: value for name, value in DISTRIBUTED.items() if name != "JWT_SECRET"}


def test_token_settings_default_to_strict():
    settings = Settings.from_env(DISTRIBUTED)
    assert (settings.jwt_require_exp, settings.jwt_leeway_seconds) == (True, 30)
    assert settings.jwt_public_key is settings.jwks_url is None
    assert settings.jwt_issuer is settings.jwt_audience is None
    assert settings.hs256_secret == JWT_SECRET


def test_token_settings_are_read():
    settings = Settings.from_env(
        {
            **DISTRIBUTED,
            "JWT_PUBLIC_KEY": EC_KEY.public_pem().replace("\n", "\\n"),
            "JWKS_URL": "https://auth.example/.well-known/jwks.json",
            "JWT_ISSUER": "https://auth.example/",
            "JWT_AUDIENCE": "scoreboard",
            "JWT_REQUIRE_EXP": "0",
            "JWT_LEEWAY_SECONDS": "5",
        }
    )
    assert settings.jwt_public_key == EC_KEY.public_pem().strip()
    assert settings.jwks_url == "https://auth.example/.well-known/jwks.json"
    assert (settings.jwt_issuer, settings.jwt_audience) == ("https://auth.example/", "scoreboard")
    assert (settings.jwt_require_exp, settings.jwt_leeway_seconds) == (False, 5)
    assert PEM not in repr(settings)


@pytest.mark.parametrize(
    "variables",
    [{"JWT_PUBLIC_KEY": PEM}, {"JWKS_URL": "https://auth.example/jwks.json"}],
    ids=["JWT_PUBLIC_KEY", "JWKS_URL"],
)
def test_a_public_key_or_jwks_url_stands_in_for_the_secret(variables: dict[str, str]):
    settings = Settings.from_env({**NO_SECRET, **variables})
    assert settings.hs256_secret is None


def test_single_process_mode_still_generates_a_trusted_secret():
    settings = Settings.from_env({"JWT_PUBLIC_KEY": PEM})
    assert settings.jwt_secret_generated
    assert settings.hs256_secret == settings.jwt_secret.value


def test_distributed_mode_needs_one_of_the_three():
    with pytest.raises(ConfigError, match="JWT_SECRET, JWT_PUBLIC_KEY or JWKS_URL is required"):
        Settings.from_env(NO_SECRET)


@pytest.mark.parametrize(
    ("variables", "named"),
    [
        ({"JWT_PUBLIC_KEY": "not a key"}, "JWT_PUBLIC_KEY"),
        ({"JWT_PUBLIC_KEY": PEM[:200]}, "JWT_PUBLIC_KEY"),
        ({"JWT_PUBLIC_KEY": RSA_KEY.private_pem()}, "JWT_PUBLIC_KEY"),
        ({"JWT_PUBLIC_KEY": SigningKey.rsa("small", bits=1024).public_pem()}, "JWT_PUBLIC_KEY"),
        ({"JWT_PUBLIC_KEY": SigningKey.ec("p384", ec.SECP384R1()).public_pem()}, "JWT_PUBLIC_KEY"),
        ({"JWKS_URL": "ftp://auth.example/jwks.json"}, "JWKS_URL"),
        ({"JWKS_URL": "http://auth.example/jwks.json"}, "JWKS_URL"),
        ({"JWKS_URL": "auth.example/jwks.json"}, "JWKS_URL"),
        ({"JWT_REQUIRE_EXP": "sometimes"}, "JWT_REQUIRE_EXP"),
        ({"JWT_LEEWAY_SECONDS": "-1"}, "JWT_LEEWAY_SECONDS"),
        ({"JWT_LEEWAY_SECONDS": "301"}, "JWT_LEEWAY_SECONDS"),
        ({"JWT_LEEWAY_SECONDS": "ten"}, "JWT_LEEWAY_SECONDS"),
    ],
    ids=[
        "not PEM",
        "truncated PEM",
        "private key",
        "RSA 1024",
        "EC P-384",
        "ftp JWKS",
        "plain http JWKS",
        "no scheme JWKS",
        "require exp",
        "negative leeway",
        "leeway too long",
        "leeway not a number",
    ],
)
def test_bad_token_settings_stop_start_up_naming_the_variable(variables, named):
    with pytest.raises(ConfigError, match=named):
        Settings.from_env({**DISTRIBUTED, **variables})


def test_plain_http_jwks_is_allowed_on_loopback_only():
    for url in ["http://127.0.0.1:8080/jwks.json", "http://localhost/jwks.json"]:
        assert Settings.from_env({**NO_SECRET, "JWKS_URL": url}).jwks_url == url
