"""labkit.names: the names the parts agree on, as docs/architecture.md gives them.

The expected values are written out here from the specification, not read from labkit.names,
so a rename that breaks the contract fails here.
"""

import pytest

from labkit import names


def test_rooms_of_the_building():
    assert names.DEFAULT_ROOM_COUNT == 8
    assert names.room_ids() == [f"room_{k}" for k in range(1, 9)]
    assert names.room_ids(10)[-2:] == ["room_9", "room_10"]


def test_zero_rooms_is_refused_with_what_to_do():
    with pytest.raises(ValueError, match="at least one room.*use n >= 1"):
        names.room_ids(0)


def test_topic_names():
    assert names.mqtt_topic("room_3") == "telemetry/room_3"
    assert names.MQTT_TOPIC_FILTER == "telemetry/+"
    assert names.raw_topic("room_3") == "telemetry.room_3"
    assert names.downsampled_topic("room_3") == "telemetry.room_3.downsampled"
    assert names.DLQ_TOPIC == "telemetry.dlq"
    assert names.ALERTS_TOPIC == "telemetry.alerts"
    assert names.RETENTION_MS == 3 * 24 * 3600 * 1000


def test_the_patterns_make_the_same_names_as_the_functions():
    """Spark fills in the downsampled pattern per row: it must give the same names."""
    for room in names.room_ids(3):
        assert names.DOWNSAMPLED_TOPIC_PATTERN.format(room_id=room) == names.downsampled_topic(room)
        assert names.RAW_TOPIC_PATTERN.format(room_id=room) == names.raw_topic(room)


def test_tables_and_queries():
    assert names.AGGREGATE_TABLE == "telemetry_5s_agg"
    assert names.AGGREGATE_QUERY == "telemetry_5s_agg"
    assert (names.ALERTS_TABLE, names.OCCUPANCY_TABLE) == ("alerts", "occupancy_sessions")
    assert (names.ROLLUP_1M_TABLE, names.ROLLUP_5M_TABLE) == ("telemetry_1m_agg", "telemetry_5m_agg")
    assert names.ROOMS_TABLE == "rooms"


def test_the_mqtt_topic_of_a_room_is_what_the_bridge_subscribes_to():
    """MQTT's ``+`` matches exactly one topic level: every room's topic, and nothing deeper."""
    prefix = names.MQTT_TOPIC_FILTER.removesuffix("+")
    for room in names.room_ids(12):
        topic = names.mqtt_topic(room)
        assert topic.startswith(prefix) and "/" not in topic[len(prefix) :]
