"""Every name that two parts of the lab must agree on, spelled once.

The simulator publishes to an MQTT topic the bridge subscribes to; the bridge writes to Kafka
topics the Spark job reads; the job writes tables a notebook reads back. Each of those names is
a contract between two parts, so it lives here and nowhere else: a module, a notebook or a test
asks ``labkit.names`` instead of writing ``"telemetry_5s_agg"`` again.

This module is a *leaf*: it imports nothing from labkit, so any part may import it without
pulling in another part (the simulator and the bridge share topic names without knowing each
other). ``docs/architecture.md`` has the same names as a table.
"""

from __future__ import annotations

# ---------------------------------------------------------------- the building

#: How many rooms the lab's building has, unless a load test asks for more.
DEFAULT_ROOM_COUNT = 8


def room_ids(n: int = DEFAULT_ROOM_COUNT) -> list[str]:
    """``room_1`` .. ``room_<n>``. Beyond eight rooms the profiles repeat (labkit.rooms)."""
    if n < 1:
        raise ValueError(f"a building needs at least one room, got n={n}: use n >= 1")
    return [f"room_{k}" for k in range(1, n + 1)]


# ---------------------------------------------------------------- MQTT

#: What the bridge subscribes to: every room's topic.
MQTT_TOPIC_FILTER = "telemetry/+"


def mqtt_topic(room_id: str) -> str:
    """Where a room's sensor publishes over MQTT, e.g. ``telemetry/room_1``."""
    return f"telemetry/{room_id}"


# ---------------------------------------------------------------- Kafka

#: The raw topic of a room: its valid readings, keyed by room id.
RAW_TOPIC_PATTERN = "telemetry.{room_id}"
#: The downsampled topic of a room: its windows. Spark fills in ``{room_id}`` per row.
DOWNSAMPLED_TOPIC_PATTERN = "telemetry.{room_id}.downsampled"
#: Rejected input: the original bytes, with the reason in the headers.
DLQ_TOPIC = "telemetry.dlq"
#: Anomaly and data-quality alerts, keyed by room id.
ALERTS_TOPIC = "telemetry.alerts"
#: The ``alert`` of a data-quality alert: too many dead letters at the bridge (key ``bridge``),
#: or too many broken, duplicated or late readings in the windows job (key: its query name).
DATA_QUALITY_ALERT = "data_quality"
#: How long Kafka keeps every lab topic: 3 days, long enough to replay a weekend.
RETENTION_MS = 3 * 24 * 60 * 60 * 1000
#: Retention deletes whole segments, and only closed ones: with Kafka's default segment.ms of
#: 7 days a quiet topic's records would live up to 10 days. An hourly roll makes "3 days" hold
#: (to within an hour and the broker's 5-minute retention check), in Kafka and in Redpanda.
SEGMENT_MS = 60 * 60 * 1000


def raw_topic(room_id: str) -> str:
    """The Kafka topic of a room's raw readings, e.g. ``telemetry.room_1``."""
    return RAW_TOPIC_PATTERN.format(room_id=room_id)


def downsampled_topic(room_id: str) -> str:
    """The Kafka topic of a room's windowed aggregates, e.g. ``telemetry.room_1.downsampled``."""
    return DOWNSAMPLED_TOPIC_PATTERN.format(room_id=room_id)


# ---------------------------------------------------------------- Delta tables and queries
# A table lives at ``<lake_root>/<name>`` and a query's checkpoint at
# ``<lake_root>/_checkpoints/<query name>`` (labkit.settings.Settings.table_path / checkpoint_path).

#: The windows per room: 10 s sliding every 5 s.
AGGREGATE_TABLE = "telemetry_5s_agg"
#: Alerts raised and cleared, one row per change (labkit.alerts); the alert job's query name too.
ALERTS_TABLE = "alerts"
ALERTS_QUERY = "alerts"
OCCUPANCY_TABLE = "occupancy_sessions"
ROLLUP_1M_TABLE = "telemetry_1m_agg"
ROLLUP_5M_TABLE = "telemetry_5m_agg"

#: The streaming job's query name: it names the checkpoint and starts Delta's ``txnAppId`` (labkit.pipeline.delta_app_id).
AGGREGATE_QUERY = "telemetry_5s_agg"
#: A replay's default name, for its table and its checkpoint (labkit.replay).
REPLAY_QUERY = "telemetry_5s_agg_replay"

# ---------------------------------------------------------------- SQLite

#: The room metadata table in the SQLite file ``settings.metadata_db``.
ROOMS_TABLE = "rooms"
#: The alert limits per room type, in the same file (labkit.metadata, read by labkit.alerts).
THRESHOLDS_TABLE = "thresholds"
