"""The load run's figures: throughput, latency, freshness, delivery, exactness; JSON and text."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bench.board_spread import BoardUser, board_of_user
from bench.final_board import BoardReading
from bench.senders import NOT_SENT, SendResults
from bench.sightings import Sightings, first_sighting, last_arrival
from bench.viewers import ViewResults
from scoreboard.boards.model import GLOBAL_BOARD_ID


@dataclass(frozen=True)
class RunOutcome:
    """Everything a load run gathered, for the report."""

    url: str
    clients: int
    clients_connected: int
    client_processes: int
    sender_processes: int
    rate: float
    boards: int  # --boards: 0 when the run is on global
    board_ids: tuple[str, ...]
    user_ids: tuple[str, ...]
    clients_by_board: Mapping[str, int]
    duration: float
    connect_seconds: float
    start: float
    sends: Sequence[SendResults]
    views: Sequence[ViewResults]
    before: BoardReading
    after: BoardReading
    client_cpu: Sequence[float]  # share of one core each client process used while sending
    server_rss_kib: Mapping[str, float] | None
    server_cpu: float | None  # share of one core the web process used while sending


def percentile(ordered: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def milliseconds(seconds: Sequence[float], points: Sequence[float]) -> dict[str, float | None]:
    """Percentiles and the maximum of durations in seconds, in milliseconds (None if none)."""
    ordered = sorted(seconds)
    figures: dict[str, float | None] = {}
    for q in points:
        figures[f"p{q:g}"] = round(percentile(ordered, q) * 1000, 2) if ordered else None
    figures["max"] = round(ordered[-1] * 1000, 2) if ordered else None
    return figures


def expected_scores(
    board_ids: Sequence[str],
    user_ids: Sequence[str],
    before: BoardReading,
    sends: Sequence[SendResults],
) -> dict[BoardUser, int]:
    """Each user's score on each board before the run plus the increments accepted for it.

    A user the first reading could not see started where its first accepted answer says:
    `newScore` counts every update accepted before it.
    """
    added: Counter[tuple[int, int]] = Counter()
    started_at: dict[tuple[int, int], int] = {}
    for send in sends:
        accepted = send.accepted
        for board, user, new_score, increment in zip(
            accepted.boards, accepted.users, accepted.new_scores, accepted.increments, strict=True
        ):
            added[(board, user)] += increment
            if new_score >= 0:
                started = started_at.get((board, user), new_score)
                started_at[(board, user)] = min(started, new_score - increment)
    scheduled = {(board_of_user(user, len(board_ids)), user) for user in range(len(user_ids))}
    expected = {}
    for board, user in sorted(scheduled | added.keys()):
        key = (board_ids[board], user_ids[user])
        if before.visible(key):
            expected[key] = before.score(key) + added[(board, user)]
        elif (board, user) in started_at:
            expected[key] = started_at[(board, user)] + added[(board, user)]
    return expected


def highest_new_scores(
    board_ids: Sequence[str], user_ids: Sequence[str], sends: Sequence[SendResults]
) -> dict[BoardUser, int]:
    """Each user's highest `newScore` answered per board: its final score if all were exact."""
    highest: dict[BoardUser, int] = {}
    for send in sends:
        accepted = send.accepted
        for board, user, new_score in zip(
            accepted.boards, accepted.users, accepted.new_scores, strict=True
        ):
            key = (board_ids[board], user_ids[user])
            highest[key] = max(highest.get(key, new_score), new_score)
    return highest


def _freshness(outcome: RunOutcome) -> tuple[list[float], list[float], int]:
    """Seconds from each 200 until the first client, and until every client of that board, saw
    its newScore on it."""
    sightings: list[Sightings] = [view.sightings for view in outcome.views]
    first, everyone, unseen = [], [], 0
    for send in outcome.sends:
        accepted = send.accepted
        for board, user, answered_at, new_score in zip(
            accepted.boards, accepted.users, accepted.answered_at, accepted.new_scores, strict=True
        ):
            board_id = outcome.board_ids[board]
            sighting = first_sighting(sightings, (board_id, outcome.user_ids[user]), new_score)
            if sighting is None:
                unseen += 1
                continue
            first.append(max(0.0, sighting.at - answered_at))
            clients, last = last_arrival(sightings, (board_id, sighting.version))
            if clients >= outcome.clients_by_board.get(board_id, 0):
                everyone.append(max(0.0, last - answered_at))
    return first, everyone, unseen


def figures(outcome: RunOutcome) -> dict[str, Any]:
    """All figures of the run; the keys are the contract of the tool's closing JSON line."""
    return {
        "url": outcome.url,
        "clients": outcome.clients,
        "clients_connected": outcome.clients_connected,
        "connect_seconds": round(outcome.connect_seconds, 2),
        "client_processes": outcome.client_processes,
        "sender_processes": outcome.sender_processes,
        "rate": outcome.rate,
        "boards": outcome.boards,
        "users": len(outcome.user_ids),
        "duration": outcome.duration,
        **_requests(outcome),
        **_delivery(outcome),
        **_exactness(outcome),
        "tool_cpu_percent": _tool_cpu(outcome),
        "server_rss_kib": dict(outcome.server_rss_kib) if outcome.server_rss_kib else None,
        "server_cpu_percent": _percent(outcome.server_cpu),
    }


def _requests(outcome: RunOutcome) -> dict[str, Any]:
    statuses: Counter[str] = Counter()
    for send in outcome.sends:
        statuses.update(send.statuses)
    accepted = statuses["200"]
    last_answer = max((max(s.accepted.answered_at, default=0.0) for s in outcome.sends), default=0)
    span = max(outcome.duration, last_answer - outcome.start)  # a late backlog counts too
    return {
        "sent": sum(statuses.values()) - statuses[NOT_SENT],
        "accepted": accepted,
        "accepted_per_second": round(accepted / span, 1),
        "statuses": dict(sorted(statuses.items())),
        "first_error": next((send.first_error for send in outcome.sends if send.first_error), None),
        "post_latency_ms": milliseconds(
            [v for s in outcome.sends for v in s.latencies], (50, 90, 99)
        ),
        "send_lag_ms": milliseconds([v for s in outcome.sends for v in s.send_lags], (50, 99)),
    }


def _delivery(outcome: RunOutcome) -> dict[str, Any]:
    first, everyone, unseen = _freshness(outcome) if outcome.views else ([], [], 0)
    events = sum(view.events - view.snapshots for view in outcome.views)
    final_versions = outcome.after.versions
    current = sum(
        clients
        for view in outcome.views
        for (board_id, version), clients in view.last_versions.items()
        if version >= final_versions.get(board_id, 0)
    )
    return {
        "freshness_ms": {**_without_max(milliseconds(first, (50, 99))), "samples": len(first)},
        "freshness_unseen": unseen,
        # With max: "every client saw every update within 1 s" is a statement about the worst.
        "freshness_all_clients_ms": {**milliseconds(everyone, (50, 99)), "samples": len(everyone)},
        "messages_per_second": round(events / outcome.duration, 1),
        "messages": events,
        "final_version": outcome.after.version,
        "clients_current": current,
        "version_regressions": sum(view.regressions for view in outcome.views),
        "client_disconnects": sum(view.disconnects for view in outcome.views),
        "foreign_pushes": sum(view.foreign_pushes for view in outcome.views),
    }


def _exactness(outcome: RunOutcome) -> dict[str, Any]:
    after = outcome.after
    expected = expected_scores(outcome.board_ids, outcome.user_ids, outcome.before, outcome.sends)
    checked = [key for key in expected if after.visible(key)]
    mismatches = [key for key in checked if after.score(key) != expected[key]]
    unanswered: Counter[BoardUser] = Counter()
    for send in outcome.sends:
        for (board, user), increments in send.unanswered.items():
            unanswered[(outcome.board_ids[board], outcome.user_ids[user])] += increments
    # A request that got no answer may or may not have been applied.
    unknown = [k for k in mismatches if 0 <= after.score(k) - expected[k] <= unanswered[k]]
    highest = highest_new_scores(outcome.board_ids, outcome.user_ids, outcome.sends)
    new_score_off = [k for k in checked if highest.get(k, expected[k]) != expected[k]]
    return {
        "exact": not mismatches if checked else None,
        "score_mismatches": len(mismatches),
        "score_mismatches_unanswered": len(unknown),
        "mismatched_users": {
            _named(key): [after.score(key), expected[key]] for key in mismatches[:10]
        },
        "exact_checked_users": len(checked),
        "exact_source": after.source,
        "new_score_mismatches": len(new_score_off),
    }


def _named(key: BoardUser) -> str:
    """A user as the report names it: its id on global, else board:user."""
    board_id, user_id = key
    return user_id if board_id == GLOBAL_BOARD_ID else f"{board_id}:{user_id}"


def _tool_cpu(outcome: RunOutcome) -> dict[str, float | None]:
    senders = [s.cpu_seconds / s.wall_seconds for s in outcome.sends if s.wall_seconds]
    return {
        "client_process_max": _percent(max(outcome.client_cpu, default=None)),
        "sender_process_max": _percent(max(senders, default=None)),
    }


def _without_max(figures: dict[str, float | None]) -> dict[str, float | None]:
    return {key: value for key, value in figures.items() if key != "max"}


def _percent(share: float | None) -> float | None:
    return None if share is None else round(share * 100, 1)


def summary(f: Mapping[str, Any]) -> list[str]:
    """Human-readable lines for the figures."""
    latency, lag = f["post_latency_ms"], f["send_lag_ms"]
    fresh, everyone = f["freshness_ms"], f["freshness_all_clients_ms"]
    statuses = " ".join(f"{status}={count}" for status, count in f["statuses"].items())
    lines = [
        f"target {f['url']}: {f['clients_connected']}/{f['clients']} clients connected in "
        f"{f['connect_seconds']:g}s over {f['client_processes']} processes, "
        f"{f['sender_processes']} sender processes",
        f"sent {f['sent']} updates at {f['rate']:g}/s for {f['duration']:g}s over {f['users']} "
        f"users{_on_boards(f)}: {f['accepted']} accepted ({f['accepted_per_second']:g}/s); "
        f"{statuses}",
        *([f"  first error: {f['first_error']}"] if f["first_error"] else []),
        f"POST latency from scheduled time: p50 {latency['p50']} ms, p90 {latency['p90']} ms, "
        f"p99 {latency['p99']} ms, max {latency['max']} ms (sent late by p99 {lag['p99']} ms)",
        f"freshness (200 -> first client sees newScore): p50 {fresh['p50']} ms, "
        f"p99 {fresh['p99']} ms over {fresh['samples']} updates ({f['freshness_unseen']} unseen); "
        f"-> every client: p50 {everyone['p50']} ms, p99 {everyone['p99']} ms, "
        f"max {everyone['max']} ms",
        f"delivered {f['messages']} leaderboardUpdate events ({f['messages_per_second']:g}/s); "
        f"{f['clients_current']} clients hold {_final_version(f)}; "
        f"{f['version_regressions']} out-of-order, {f['client_disconnects']} disconnects",
    ]
    if f["foreign_pushes"]:
        lines.append(f"  {f['foreign_pushes']} pushes reached clients not holding their board")
    if f["exact"] is None:
        lines.append(f"final scores: none of the users visible through {f['exact_source']}")
    else:
        verdict = "exact" if f["exact"] else f"{f['score_mismatches']} users WRONG"
        lines.append(
            f"final scores: {verdict} ({f['exact_checked_users']} users checked via "
            f"{f['exact_source']}) {f['mismatched_users'] or ''}".rstrip()
        )
        if f["score_mismatches_unanswered"]:
            lines.append(
                f"  of which {f['score_mismatches_unanswered']} lie within the increments of "
                "requests that got no answer (timeouts, lost connections: outcome unknown)"
            )
        if f["new_score_mismatches"]:
            lines.append(
                f"newScore: for {f['new_score_mismatches']} users the highest newScore answered "
                "is not their final score"
            )
    cpu = f["tool_cpu_percent"]
    lines.append(
        f"load tool CPU (busiest process, % of a core): clients {cpu['client_process_max']}, "
        f"senders {cpu['sender_process_max']}"
    )
    if f["server_rss_kib"]:
        rss = f["server_rss_kib"]
        lines.append(
            f"web process RSS: {rss['before']} KiB before, {rss['after_connect']} KiB with the "
            f"clients connected: {rss['per_client']} KiB per client; "
            f"{f['server_cpu_percent']}% of a core while sending"
        )
    return lines


def _on_boards(f: Mapping[str, Any]) -> str:
    return f" on {f['boards']} boards" if f["boards"] else ""


def _final_version(f: Mapping[str, Any]) -> str:
    if f["boards"]:
        return f"their board's final version (the highest {f['final_version']})"
    return f"the final version {f['final_version']}"
