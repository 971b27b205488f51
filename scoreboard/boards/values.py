"""A user's value on a board after one update: apply.lua's rules, for the ledger and the
single process's memory store (tests check all three agree)."""

from __future__ import annotations

from typing import NamedTuple

from scoreboard.boards.model import Operator, Order


def value_after(operator: Operator, order: Order, current: int | None, posted: int) -> int | None:
    """The user's new value once `posted` is applied to `current` (None: no value yet).

    None when the value does not change: the user keeps the place they reached first.
    """
    if operator == "incr":
        return (current or 0) + posted
    if current is None:
        return posted
    if current == posted:
        return None
    if operator == "best" and (current > posted if order == "desc" else current < posted):
        return None
    return posted


class Place(NamedTuple):
    """A user's standing on a board other than `global`, as the ledger keeps it."""

    value: int | None  # None: no value yet
    reached: int | None  # the acceptance order of the update that reached `value`
    latest: int | None  # the acceptance order of the newest `set` applied


def place_after(operator: Operator, order: Order, place: Place, posted: int, seq: int) -> Place:
    """The user's place once an update accepted at `seq` is applied, whatever order a user's
    updates are applied in (apply.lua's rules): a `set` older than the newest one applied
    changes nothing, and among equal values the earliest to reach it ranks first."""
    if operator == "set":
        if place.latest is not None and seq < place.latest:
            return place
        place = place._replace(latest=seq)
    new = value_after(operator, order, place.value, posted)
    if new is not None:
        reached = seq
        if operator == "incr" and place.reached is not None:
            reached = max(seq, place.reached)  # the total is reached by its newest update
        return place._replace(value=new, reached=reached)
    if (
        operator == "best"
        and posted == place.value
        and place.reached is not None
        and seq < place.reached
    ):
        return place._replace(reached=seq)  # the same best value, reached earlier
    return place
