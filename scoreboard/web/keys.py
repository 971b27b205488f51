"""Typed keys for what the application factory shares with routes and socket handlers."""

from __future__ import annotations

import asyncio
from weakref import WeakSet

import redis.asyncio as redis
import socketio
from aiohttp import web

from scoreboard.apply.ledger.postgres import PostgresLedger
from scoreboard.apply.store import LeaderboardStore
from scoreboard.boards.closed_seasons import ClosedSeasons
from scoreboard.boards.contents import BoardContents
from scoreboard.boards.registry import BoardRegistry
from scoreboard.boards.seasons import Seasons
from scoreboard.config import Settings
from scoreboard.intake.admission import InFlightLimit
from scoreboard.intake.auth import TokenVerifier
from scoreboard.intake.rate_limit import UserRateLimiter
from scoreboard.intake.rate_policy import RatePolicy
from scoreboard.intake.submission import ScoreSubmission
from scoreboard.ops.metrics import WebMetrics
from scoreboard.ops.readiness import ReadinessProbe
from scoreboard.push.board_listener import BoardWatch
from scoreboard.push.board_tops import BoardTops
from scoreboard.push.broadcast import Emitter
from scoreboard.push.fan_out import FanOut
from scoreboard.queue import UpdatePublisher

SETTINGS = web.AppKey("settings", Settings)
BOARDS = web.AppKey("boards", BoardRegistry)
VERIFIER = web.AppKey("verifier", TokenVerifier)
SOCKETIO = web.AppKey("socketio", socketio.AsyncServer)
FAN_OUT = web.AppKey("fan_out", FanOut)
# Where this node sends pushes so that every node's clients get them: the boards' channels (or,
# single-process, the Socket.IO server itself); and the boards whose pushes this node hears.
PUSHES = web.AppKey("pushes", Emitter)
BOARD_CHANNELS = web.AppKey("board_channels", BoardWatch)
STORE = web.AppKey("store", LeaderboardStore)
PUBLISHER = web.AppKey("publisher", UpdatePublisher)
SUBMISSION = web.AppKey("submission", ScoreSubmission)
RATE_POLICY = web.AppKey("rate_policy", RatePolicy)
LEDGER = web.AppKey("ledger", PostgresLedger)  # only with DATABASE_URL
READ_RATE_LIMITER = web.AppKey("read_rate_limiter", UserRateLimiter)
# Set only in the single-process mode with a generated JWT_SECRET.
DEMO_TOKEN = web.AppKey("demo_token", str)
OPEN_WEBSOCKETS = web.AppKey("open_websockets", WeakSet)  # of web.WebSocketResponse
REDIS = web.AppKey("redis", redis.Redis)  # distributed mode only
# Fails with the error that must stop this node (a queue found at odds with the configuration).
FATAL: web.AppKey[asyncio.Future[None]] = web.AppKey("fatal")
METRICS = web.AppKey("metrics", WebMetrics)
READINESS = web.AppKey("readiness", ReadinessProbe)
OPENAPI_DOCUMENT = web.AppKey("openapi_document", bytes)  # encoded once at start-up
ASYNCAPI_DOCUMENT = web.AppKey("asyncapi_document", bytes)  # likewise
IN_FLIGHT = web.AppKey("in_flight", InFlightLimit)  # score updates under way, for shedding
BOARDS = web.AppKey("boards", BoardRegistry)
SEASONS = web.AppKey("seasons", Seasons)
BOARD_CONTENTS = web.AppKey("board_contents", BoardContents)
BOARD_TOPS = web.AppKey("board_tops", BoardTops)  # each board's current top 10, for snapshots
CLOSED_SEASONS = web.AppKey("closed_seasons", ClosedSeasons)
