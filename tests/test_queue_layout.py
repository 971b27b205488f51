"""The queues of each QUEUE_TYPE: names, arguments, where each priority goes."""

from __future__ import annotations

import pytest

from scoreboard.config import MAX_PRIORITY, Settings
from scoreboard.errors import ConfigError
from scoreboard.queue.queue_layout import QueueLayout

DISTRIBUTED = {
    "REDIS_URL": "redis://localhost:6379/0",
    "RABBITMQ_URL": "amqp://guest:guest@localhost:5672/",
    "JWT_SECRET": "x" * 32,
}


def test_classic_is_one_priority_queue_as_before():
    layout = QueueLayout.of(Settings.from_env({**DISTRIBUTED, "TIER_PRIORITIES": "premium=5"}))
    [queue] = layout.update_queues
    assert queue.name == "scoreboard.updates"
    assert queue.arguments == {
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": "scoreboard.updates.dead",
        "x-max-priority": MAX_PRIORITY,
    }
    assert {layout.queue_for(p) for p in range(MAX_PRIORITY + 1)} == {"scoreboard.updates"}
    assert layout.dead_letter_arguments == {}
    assert not layout.broker_counts_deliveries


def test_quorum_has_a_queue_per_priority_level_in_use_highest_first():
    env = {**DISTRIBUTED, "QUEUE_TYPE": "quorum", "TIER_PRIORITIES": "gold=7,premium=5,vip=7"}
    layout = QueueLayout.of(Settings.from_env(env))
    assert [(q.name, q.level) for q in layout.update_queues] == [
        ("scoreboard.updates.p7", 7),
        ("scoreboard.updates.p5", 5),
        ("scoreboard.updates", 0),
    ]
    for queue in layout.update_queues:
        assert queue.arguments["x-queue-type"] == "quorum"
        assert queue.arguments["x-delivery-limit"] == 4
        assert queue.arguments["x-dead-letter-routing-key"] == "scoreboard.updates.dead"
        assert "x-max-priority" not in queue.arguments
    assert layout.dead_letter_arguments == {"x-queue-type": "quorum"}
    assert layout.broker_counts_deliveries


def test_dead_lettering_on_quorum_queues_waits_for_the_dead_letter_queue_to_confirm():
    queue = QueueLayout("q", "quorum").update_queue(0)
    assert queue.arguments["x-dead-letter-strategy"] == "at-least-once"
    assert queue.arguments["x-overflow"] == "reject-publish"  # RabbitMQ requires it for that


@pytest.mark.parametrize(
    ("priority", "queue"),
    [(0, "q"), (1, "q"), (4, "q"), (5, "q.p5"), (6, "q.p5"), (7, "q.p7"), (9, "q.p7")],
)
def test_a_priority_goes_to_the_highest_level_not_above_it(priority: int, queue: str):
    layout = QueueLayout("q", "quorum", frozenset({5, 7}))
    assert layout.queue_for(priority) == queue


def test_levels_an_earlier_tier_map_may_have_left_are_the_others():
    layout = QueueLayout("q", "quorum", frozenset({5}))
    assert layout.unused_levels == (9, 8, 7, 6, 4, 3, 2, 1)
    assert QueueLayout("q").unused_levels == ()


def test_the_delivery_limit_is_a_setting():
    env = {**DISTRIBUTED, "QUEUE_TYPE": "quorum", "QUEUE_DELIVERY_LIMIT": "9"}
    layout = QueueLayout.of(Settings.from_env(env))
    assert layout.update_queue(0).arguments["x-delivery-limit"] == 9


@pytest.mark.parametrize(
    ("variable", "value"),
    [("QUEUE_TYPE", "mirrored"), ("QUEUE_TYPE", "stream"), ("QUEUE_DELIVERY_LIMIT", "-1")],
)
def test_bad_queue_settings_stop_start_up(variable: str, value: str):
    with pytest.raises(ConfigError, match=variable):
        Settings.from_env({**DISTRIBUTED, variable: value})
