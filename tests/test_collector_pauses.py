"""Survivors of a full collection are frozen, and handed back now and then for their cycles."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from scoreboard.ops.collector_pauses import FreezeSurvivors


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_full_collection_freezes_its_survivors_so_later_ones_skip_them(unfrozen):
    clock = Clock()
    callback = FreezeSurvivors(clock, unfreeze_seconds=60)
    gc.callbacks.append(callback)
    try:
        kept = [object() for _ in range(1000)]  # long-lived objects, as a node's connections
        gc.collect(1)
        assert gc.get_freeze_count() == 0, "only a full collection freezes"
        gc.collect(2)
        assert gc.get_freeze_count() >= len(kept)
        clock.now = 61
        gc.collect(2)
        assert gc.get_freeze_count() == 0, "handed back for the next full collection"
        gc.collect(2)
        assert gc.get_freeze_count() >= len(kept)
    finally:
        gc.callbacks.remove(callback)


def test_cycles_among_frozen_objects_are_collected_once_handed_back(unfrozen):
    clock = Clock()
    callback = FreezeSurvivors(clock, unfreeze_seconds=60)
    gc.callbacks.append(callback)
    try:

        class Node:
            other: Node

        first, second = Node(), Node()
        first.other, second.other = second, first
        watch = weakref.ref(first)
        gc.collect(2)  # frozen with the rest
        del first, second
        gc.collect(2)
        assert watch() is not None, "a frozen cycle waits"
        clock.now = 61
        gc.collect(2)  # hands everything back
        gc.collect(2)  # and this one frees the cycle
        assert watch() is None
    finally:
        gc.callbacks.remove(callback)
