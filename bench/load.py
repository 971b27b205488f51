"""`python -m bench load`: open-loop score updates against a deployment while N clients watch."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jwt
import uvloop

from bench import server_process
from bench.board_setup import BoardSetupFailed, create_boards
from bench.board_socket import SocketRefused
from bench.board_spread import board_ids
from bench.child import ChildFailed, ChildProcess, raise_open_files_limit
from bench.endpoint import Endpoint
from bench.final_board import BoardReader, BoardReading, wait_until_drained
from bench.http_connection import ConnectionLost, HttpConnection
from bench.load_report import RunOutcome, expected_scores, figures, summary
from bench.senders import SendPlan, SendResults, run_senders
from bench.viewers import Connected, ViewPlan, ViewResults, ViewStatus, run_viewers
from scoreboard.boards.model import GLOBAL_BOARD_ID
from scoreboard.intake.auth import issue_token

START_DELAY_SECONDS = 0.5  # between "go" and the first due request, so every sender is waiting
REACH_TIMEOUT_SECONDS = 5.0
CURRENT_POLL_SECONDS = 0.2
EXIT_FAILED = 2
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143
ADMIN_SUBJECT = "bench-admin"


EPILOG = """\
POST latency is measured from each request's scheduled time (no coordinated omission); at most
--connections requests are in flight, so a service that falls behind shows as growing latency.
Freshness is the time from a POST's 200 until any client first receives a leaderboardUpdate in
which that user has exactly the answered newScore; updates whose score was never pushed (the
user's next update superseded it before a push, or the user was outside the top 10) count as
unseen; "every client" is until the last client got that board.
With --boards N the tool creates boards b0..b{N-1} (incr, desc, never) through the admin API;
user u posts to board u mod N and client k holds board k mod N, so freshness is per board and
user, and "every client" means every client holding that board. A push of a board a client does
not hold counts as a foreign push.
Exactness compares each user's final score with its score before the run plus its accepted
increments: all users with --redis-url, else those in a fresh client's top 10 (--boards needs
--redis-url).
Output: summary lines, then one JSON line with every figure."""


class LoadError(Exception):
    """The run cannot go on; the message says why, for the person running it."""


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "load",
        help="POST updates open-loop at a fixed rate while N Socket.IO clients watch the board",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    target = parser.add_argument_group("target")
    target.add_argument("--url", default="http://127.0.0.1:3000", help="the deployment's base URL")
    target.add_argument(
        "--client-url",
        action="append",
        default=[],
        help="Socket.IO clients connect here instead of --url; give it once per web node to "
        "spread them: the clients of board b go to the (b mod n)-th (with --boards), else "
        "client k to the (k mod n)-th",
    )
    target.add_argument("--socket-path", default="/ws/scoreboard")
    target.add_argument(
        "--jwt-secret",
        default=os.environ.get("JWT_SECRET"),
        help="HS256 secret to mint a token per user (default: $JWT_SECRET)",
    )
    target.add_argument(
        "--token-file",
        type=Path,
        help="instead of a secret: one token per line, one line per user (their `sub`)",
    )
    target.add_argument(
        "--user-prefix", default="bench-user-", help="users are PREFIX0..PREFIX{U-1}"
    )
    target.add_argument(
        "--admin-token",
        help="a token with role admin to create the --boards (default: minted from the secret)",
    )
    target.add_argument("--redis-url", help="read every user's final score from this Redis")
    target.add_argument("--redis-key-prefix", default="scoreboard:")
    target.add_argument(
        "--server-pid",
        type=int,
        help="a local web process: report its memory per client and its CPU while sending",
    )
    load = parser.add_argument_group("load")
    load.add_argument("--clients", type=int, default=100, help="Socket.IO clients to connect")
    load.add_argument("--rate", type=float, default=100.0, help="POSTs per second, open-loop")
    load.add_argument("--duration", type=float, default=10.0, help="seconds of sending")
    load.add_argument("--users", type=int, default=10, help="users the POSTs go round")
    load.add_argument(
        "--boards",
        type=int,
        default=0,
        help="create boards b0..b{N-1} and spread POSTs and clients over them (0: global)",
    )
    load.add_argument("--max-increment", type=int, default=1, help="increments are 1..this")
    load.add_argument("--client-processes", type=int, default=os.cpu_count() or 1)
    load.add_argument("--sender-processes", type=int, default=1)
    load.add_argument(
        "--connections", type=int, default=64, help="POSTs in flight at most, over all senders"
    )
    timing = parser.add_argument_group("timing")
    timing.add_argument("--connect-concurrency", type=int, default=100, help="per process")
    timing.add_argument("--connect-timeout", type=float, default=30.0)
    timing.add_argument("--request-timeout", type=float, default=10.0)
    timing.add_argument(
        "--drain-timeout",
        type=float,
        default=30.0,
        help="longest wait for the queue to drain; a request due longer ago is not sent",
    )
    timing.add_argument(
        "--settle", type=float, default=2.0, help="seconds unchanged that count as drained"
    )
    parser.set_defaults(run=main)


def main(args: argparse.Namespace) -> None:
    """Run, print the summary and the JSON line; exit non-zero with a message on failure."""
    try:
        report = uvloop.run(run(args))
    except LoadError as exc:
        print(f"bench load: {exc}", file=sys.stderr)
        sys.exit(EXIT_FAILED)
    except KeyboardInterrupt:
        print("bench load: interrupted", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    except asyncio.CancelledError:
        print("bench load: terminated", file=sys.stderr)
        sys.exit(EXIT_TERMINATED)
    for line in summary(report):
        print(line)
    print(json.dumps(report), flush=True)


async def run(args: argparse.Namespace) -> dict:
    """Connect the clients, send, drain, and return the figures."""
    main_task = asyncio.current_task()
    assert main_task is not None
    # SIGTERM ends the run like Ctrl-C: through the `finally` that ends every child process.
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main_task.cancel)
    _check_arguments(args)
    try:
        endpoint = Endpoint.from_url(args.url)
        args.client_endpoints = tuple(Endpoint.from_url(url) for url in args.client_url) or (
            endpoint,
        )
    except ValueError as exc:
        raise LoadError(str(exc)) from None
    user_ids, tokens = _credentials(args)
    admin_token = _admin_token(args)
    raise_open_files_limit()
    await _check_reachable(endpoint)
    boards = board_ids(args.boards)
    if admin_token is not None:
        try:
            created = await create_boards(endpoint, admin_token, boards, args.request_timeout)
        except (BoardSetupFailed, OSError, TimeoutError) as exc:
            raise LoadError(f"could not create the boards: {exc}") from None
        progress(f"{len(boards)} boards ready ({created} created)")
    reader = BoardReader(
        endpoint,
        args.socket_path,
        tokens[0],
        boards,
        user_ids,
        args.redis_url,
        args.redis_key_prefix,
    )
    children: list[ChildProcess] = []
    try:
        before = await _read(reader)
        outcome = await _measure(args, endpoint, boards, user_ids, tokens, reader, before, children)
        return figures(outcome)
    except ChildFailed as exc:
        raise LoadError(str(exc)) from None
    except (SocketRefused, OSError, TimeoutError) as exc:
        raise LoadError(f"could not read the board: {str(exc) or type(exc).__name__}") from None
    except server_process.ProcessGone as exc:
        raise LoadError(f"--server-pid: {exc}") from None
    finally:
        await reader.close()
        for child in children:
            child.end()


async def _measure(
    args: argparse.Namespace,
    endpoint: Endpoint,
    boards: Sequence[str],
    user_ids: Sequence[str],
    tokens: Sequence[str],
    reader: BoardReader,
    before: BoardReading,
    children: list[ChildProcess],
) -> RunOutcome:
    """The run itself; every process it starts goes into `children` for the caller to end."""
    pid = args.server_pid
    rss_before = server_process.rss_kib(pid) if pid else None
    connecting = time.monotonic()
    progress(f"connecting {args.clients} clients to {', '.join(map(str, args.client_endpoints))}")
    viewers = _start_viewers(args, boards, user_ids, tokens[0])
    children += viewers
    connected: list[Connected] = await _gather(viewers, "connected")
    connect_seconds = time.monotonic() - connecting
    _check_connected(connected, args.clients)
    clients_connected = sum(report.clients for report in connected)
    clients_by_board: Counter[str] = Counter()
    for report in connected:
        clients_by_board.update(report.clients_by_board)
    # Only now: connecting many clients can take longer than the server keeps idle POST
    # connections open.
    senders = _start_senders(args, endpoint, boards, user_ids, tokens)
    children += senders
    await _gather(senders, "ready")
    rss = _rss_growth(pid, rss_before, clients_connected)
    start = time.time() + START_DELAY_SECONDS
    for sender in senders:
        sender.send("go", start)
    progress(f"connected in {connect_seconds:.1f}s; sending {args.rate:g}/s for {args.duration:g}s")
    cpu_before, cpu_from = await _client_cpu(viewers)
    server_cpu_before = server_process.cpu_seconds(pid) if pid else 0.0
    sends: list[SendResults] = await _gather(senders, "results")
    cpu_after, cpu_to = await _client_cpu(viewers)
    server_cpu = None
    if pid:
        server_cpu = (server_process.cpu_seconds(pid) - server_cpu_before) / (cpu_to - cpu_from)
    progress("sent; waiting for the queue to drain")
    expected = expected_scores(boards, user_ids, before, sends)
    after = await wait_until_drained(reader.read, expected, args.settle, args.drain_timeout)
    await _wait_for_current_clients(viewers, after.versions, args.settle + 3.0)
    for viewer in viewers:
        viewer.send("stop")
    views: list[ViewResults] = await _gather(viewers, "results")
    return RunOutcome(
        url=args.url,
        clients=args.clients,
        clients_connected=clients_connected,
        client_processes=len(viewers),
        sender_processes=len(senders),
        rate=args.rate,
        boards=args.boards,
        board_ids=tuple(boards),
        user_ids=tuple(user_ids),
        clients_by_board=dict(clients_by_board),
        duration=args.duration,
        connect_seconds=connect_seconds,
        start=start,
        sends=sends,
        views=views,
        before=before,
        after=after,
        client_cpu=[
            (b - a) / (cpu_to - cpu_from) for a, b in zip(cpu_before, cpu_after, strict=True)
        ],
        server_rss_kib=rss,
        server_cpu=server_cpu,
    )


async def _gather(children: Sequence[ChildProcess], kind: str) -> list[Any]:
    """The next message of kind `kind` from each child, in order."""
    return list(await asyncio.gather(*(child.receive(kind) for child in children)))


def progress(message: str) -> None:
    """A phase of the run, on stderr: stdout is kept for the report."""
    print(f"bench load: {message}", file=sys.stderr, flush=True)


def _check_arguments(args: argparse.Namespace) -> None:
    if args.clients < 0:
        raise LoadError("--clients must be 0 or more")
    if args.boards < 0:
        raise LoadError("--boards must be 0 or more")
    if args.boards > args.users:
        raise LoadError("--boards must be at most --users: user u posts to board u mod N")
    if args.boards and not args.redis_url:
        raise LoadError("--boards needs --redis-url to read the boards' scores")
    for name in (
        "rate",
        "duration",
        "users",
        "max_increment",
        "client_processes",
        "sender_processes",
        "connections",
        "connect_concurrency",
    ):
        if getattr(args, name) <= 0:
            raise LoadError(f"--{name.replace('_', '-')} must be more than 0")
    args.client_processes = min(args.client_processes, max(1, args.clients))
    args.connections = max(args.connections, args.sender_processes)


def _credentials(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """User ids and one token for each, minted from the secret or read from --token-file."""
    if args.token_file is not None:
        lines = [line.strip() for line in args.token_file.read_text().splitlines()]
        tokens = [line for line in lines if line][: args.users]
        if len(tokens) < args.users:
            raise LoadError(
                f"{args.token_file} holds {len(tokens)} tokens; --users is {args.users}"
            )
        try:
            users = [str(jwt.decode(t, options={"verify_signature": False})["sub"]) for t in tokens]
        except (jwt.PyJWTError, KeyError) as exc:
            raise LoadError(f"{args.token_file}: not a JWT with a sub: {exc}") from None
        return users, tokens
    if not args.jwt_secret:
        raise LoadError("no way to make tokens: give --jwt-secret, JWT_SECRET or --token-file")
    ttl = int(3600 + 2 * (args.duration + args.drain_timeout))
    users = [f"{args.user_prefix}{index}" for index in range(args.users)]
    return users, [issue_token(args.jwt_secret, user, user, ttl) for user in users]


def _admin_token(args: argparse.Namespace) -> str | None:
    """A token with role admin to create the boards; None when the run is on global."""
    if not args.boards:
        return None
    if args.admin_token:
        return str(args.admin_token)
    if not args.jwt_secret:
        raise LoadError("--boards needs an admin token: give --jwt-secret or --admin-token")
    ttl = int(3600 + 2 * (args.duration + args.drain_timeout))
    return issue_token(args.jwt_secret, ADMIN_SUBJECT, ADMIN_SUBJECT, ttl, {"role": "admin"})


async def _check_reachable(endpoint: Endpoint) -> None:
    """GET /healthz once, so a wrong URL fails at once with a plain message."""
    request = f"GET {endpoint.base_path}/healthz HTTP/1.1\r\nHost: {endpoint.host_header}\r\n\r\n"
    try:
        connection = await HttpConnection.open(endpoint, REACH_TIMEOUT_SECONDS)
        try:
            async with asyncio.timeout(REACH_TIMEOUT_SECONDS):
                response = await connection.request(request.encode())
        finally:
            connection.close()
    except (OSError, TimeoutError, ConnectionLost) as exc:
        reason = str(exc) or type(exc).__name__
        raise LoadError(f"cannot reach {endpoint}: {reason}") from None
    if response.status != 200:
        raise LoadError(f"{endpoint}/healthz answered {response.status}, not 200")


async def _read(reader: BoardReader) -> BoardReading:
    try:
        return await reader.read()
    except SocketRefused as exc:
        raise LoadError(f"the Socket.IO connection was refused: {exc}") from None
    except (OSError, TimeoutError) as exc:
        raise LoadError(f"could not read the board: {str(exc) or type(exc).__name__}") from None


def _start_viewers(
    args: argparse.Namespace,
    boards: Sequence[str],
    user_ids: Sequence[str],
    token: str,
) -> list[ChildProcess]:
    shares = _split(args.clients, args.client_processes)
    named = () if tuple(boards) == (GLOBAL_BOARD_ID,) else tuple(boards)
    return [
        ChildProcess(
            f"client process {index}",
            run_viewers,
            ViewPlan(
                endpoints=args.client_endpoints,
                socket_path=args.socket_path,
                token=token,
                clients=clients,
                user_ids=tuple(user_ids),
                connect_concurrency=args.connect_concurrency,
                connect_timeout=args.connect_timeout,
                boards=named,
                first_client=sum(shares[:index]),
            ),
        )
        for index, clients in enumerate(shares)
        if clients
    ]


def _start_senders(
    args: argparse.Namespace,
    endpoint: Endpoint,
    boards: Sequence[str],
    user_ids: Sequence[str],
    tokens: Sequence[str],
) -> list[ChildProcess]:
    total = round(args.rate * args.duration)
    connections = _split(args.connections, args.sender_processes)
    return [
        ChildProcess(
            f"sender process {index}",
            run_senders,
            SendPlan(
                endpoint=endpoint,
                board_ids=tuple(boards),
                user_ids=tuple(user_ids),
                tokens=tuple(tokens),
                total=total,
                rate=args.rate,
                index=index,
                processes=args.sender_processes,
                connections=connections[index],
                max_increment=args.max_increment,
                request_timeout=args.request_timeout,
                give_up_after=args.drain_timeout,
                seed=index,
            ),
        )
        for index in range(args.sender_processes)
    ]


def _split(count: int, parts: int) -> list[int]:
    """`count` spread over `parts` as evenly as whole numbers allow."""
    return [count // parts + (1 if index < count % parts else 0) for index in range(parts)]


def _check_connected(connected: Sequence[Connected], wanted: int) -> None:
    failures = sum(report.failures for report in connected)
    if failures:
        reason = next(report.first_error for report in connected if report.failures)
        raise LoadError(f"{failures} of {wanted} Socket.IO clients could not connect: {reason}")


async def _client_cpu(viewers: Sequence[ChildProcess]) -> tuple[list[float], float]:
    """Each client process's CPU seconds so far, and when they were read."""
    for viewer in viewers:
        viewer.send("status")
    reports: list[ViewStatus] = await _gather(viewers, "status")
    return [report.cpu_seconds for report in reports], time.monotonic()


async def _wait_for_current_clients(
    viewers: Sequence[ChildProcess], versions: Mapping[str, int], timeout: float
) -> None:
    """Wait until every client holds its board's version in `versions` or newer (the report
    says if some never did)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for viewer in viewers:
            viewer.send("status")
        reports: list[ViewStatus] = await _gather(viewers, "status")
        if all(
            oldest >= versions.get(board_id, 0)
            for report in reports
            for board_id, oldest in report.oldest_versions.items()
        ):
            return
        await asyncio.sleep(CURRENT_POLL_SECONDS)


def _rss_growth(pid: int | None, before: int | None, clients: int) -> dict[str, float] | None:
    if pid is None or before is None:
        return None
    after = server_process.rss_kib(pid)
    per_client = round((after - before) / max(1, clients), 1)
    return {"before": before, "after_connect": after, "per_client": per_client}
