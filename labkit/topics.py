"""The lab's Kafka topics: their creation, a peek at their last messages, and admin tasks.

The topic names themselves live in :mod:`labkit.names` (the simulator, the bridge and the Spark
job must agree on them); ``raw_topic``, ``downsampled_topic`` and ``DLQ_TOPIC`` are imported
here too, for the code that reads them next to the admin calls.

Creation goes through confluent-kafka's AdminClient, the same API a data engineer would use in
production, and it is idempotent: a second call changes nothing that is already right.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import socket
import sys
import uuid
from typing import Iterable

from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic

from labkit import settings as settings_module
from labkit.errors import LabkitError
from labkit.names import DLQ_TOPIC, RETENTION_MS, SEGMENT_MS, downsampled_topic, raw_topic
from labkit.names import room_ids as all_room_ids

#: The configuration every lab topic gets (and keeps: ensure_topics corrects it).
TOPIC_CONFIG = {"retention.ms": str(RETENTION_MS), "segment.ms": str(SEGMENT_MS)}


def raw_topics(room_ids: Iterable[str] | None = None) -> list[str]:
    """The raw topics of these rooms (default: the building's eight), e.g. for Spark's ``subscribe``."""
    return [raw_topic(r) for r in (room_ids or all_room_ids())]


def lab_topics(room_ids: Iterable[str]) -> list[str]:
    """Every topic the lab uses for these rooms: raw, downsampled, and the dead-letter topic."""
    rooms = list(room_ids)
    return [raw_topic(r) for r in rooms] + [downsampled_topic(r) for r in rooms] + [DLQ_TOPIC]


class _KafkaLogFilter(logging.Filter):
    """librdkafka's log, minus what a learner cannot act on.

    * ``Coordinator load in progress: retrying``: a fresh broker is still loading its
      coordinator; the producer retries by itself and succeeds a moment later.
    * The same failure over and over (``Connect to ... failed: Connection refused`` every
      second while a broker is away): shown once, so a real problem still shows.
    """

    TRANSIENT = ("Coordinator load in progress",)

    def __init__(self):
        super().__init__()
        self.seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if any(noise in text for noise in self.TRANSIENT):
            return False
        # "... failed: Connection refused (after 0ms in state CONNECT)": the same line but for its timing
        key = re.sub(r"\(after \d+ms.*?\)|rdkafka#\w+-\d+", "", text)
        if key in self.seen:
            return False
        self.seen.add(key)
        return True


def _kafka_log() -> logging.Logger:
    """The Python logger that every labkit Kafka client hands librdkafka's log to (``logger``)."""
    log = logging.getLogger("labkit.kafka")
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("kafka: %(message)s"))
        handler.addFilter(_KafkaLogFilter())
        log.addHandler(handler)
        log.setLevel(logging.WARNING)
        log.propagate = False
    return log


def client_config(s: settings_module.Settings, **options) -> dict:
    """The configuration of every Kafka client labkit makes: the broker, and where its log goes.

    Without a ``logger``, librdkafka prints straight to the terminal, including its retries;
    with one, its log passes :class:`_KafkaLogFilter` first. (The log is delivered when the
    client is polled, which every labkit client does.)
    """
    return {"bootstrap.servers": s.kafka_bootstrap, "logger": _kafka_log(), **options}


def admin(s: settings_module.Settings | None = None) -> AdminClient:
    s = s or settings_module.get()
    return AdminClient(client_config(s))


#: What to do when Kafka does not answer, in either profile.
NEXT_STEP = (
    "start it with `labkit up` (embedded) or `docker compose up -d redpanda` (compose), "
    "or point LABKIT_KAFKA_HOST / LABKIT_KAFKA_PORT at it"
)


def answers(bootstrap: str, timeout: float = 3.0) -> bool:
    """Whether a Kafka broker at ``bootstrap`` answers a metadata request (the health probe).

    A plain TCP connect first, with a short timeout: when nothing listens, that says so at once,
    where the metadata request would wait its whole ``timeout``.
    """
    host, port = bootstrap.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=1.0).close()
    except OSError:
        return False
    try:
        return (
            len(
                AdminClient({"bootstrap.servers": bootstrap, "logger": _kafka_log()})
                .list_topics(timeout=timeout)
                .brokers
            )
            > 0
        )
    except KafkaException:
        return False


def require_broker(s: settings_module.Settings | None = None) -> None:
    """Fail at once, naming Kafka, when it does not answer.

    A Kafka client that cannot reach its broker retries in silence: creating a topic fails after
    30 s with "Failed while waiting for controller", Spark a minute later with a page of Java.
    """
    s = s or settings_module.get()
    if not answers(s.kafka_bootstrap):
        raise LabkitError(f"Kafka at {s.kafka_bootstrap} is not reachable", NEXT_STEP)


def _wait(futures: dict, ignore: tuple = ()) -> None:
    for name, future in futures.items():
        try:
            future.result()
        except KafkaException as error:
            if error.args[0].code() not in ignore:
                raise LabkitError(
                    f"Kafka refused the change to {name}: {error.args[0].str()}",
                    "check that the broker runs (`labkit status`)",
                ) from None


def ensure_topics(topics: Iterable[str], partitions: int = 1, s: settings_module.Settings | None = None) -> None:
    """Create the topics that are missing, and set 3-day retention (``TOPIC_CONFIG``) on all of them.

    One partition per room topic keeps each room's readings in order, which is all the lab
    needs; the load benchmark spreads its many rooms over many topics instead.
    """
    require_broker(s)
    client = admin(s)
    names = list(topics)
    new = [NewTopic(t, num_partitions=partitions, replication_factor=1, config=TOPIC_CONFIG) for t in names]
    _wait(client.create_topics(new, request_timeout=30), ignore=(KafkaError.TOPIC_ALREADY_EXISTS,))
    # Topics that existed before may carry another retention: set it (a no-op when it is right).
    entries = [ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET) for k, v in TOPIC_CONFIG.items()]
    resources = [ConfigResource(ConfigResource.Type.TOPIC, t, incremental_configs=entries) for t in names]
    _wait(client.incremental_alter_configs(resources))
    _wait_for_leaders(client, names)


def _wait_for_leaders(client: AdminClient, names: list[str], timeout: float = 30) -> None:
    """A new topic exists a moment before its partitions have a leader to read from or write to."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        metadata = client.list_topics(timeout=10).topics
        waiting = [
            n
            for n in names
            if n not in metadata
            or metadata[n].error is not None
            or any(p.leader < 0 for p in metadata[n].partitions.values())
        ]
        if not waiting:
            return
        if time.monotonic() > deadline:
            raise LabkitError(
                f"topics without a leader after {timeout:.0f} s: {', '.join(waiting[:5])}",
                "check the broker's log (`labkit status`, .labkit/logs/kafka.log)",
            )
        time.sleep(0.2)


def topic_config(topic: str, s: settings_module.Settings | None = None) -> dict[str, str]:
    """The broker's view of a topic's configuration (e.g. ``retention.ms``)."""
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    client = admin(s)  # keep a reference: the request dies with the client
    entries = client.describe_configs([resource])[resource].result()
    return {name: entry.value for name, entry in entries.items()}


def end_offsets(topic_names: Iterable[str], s: settings_module.Settings | None = None) -> dict[str, dict[str, int]]:
    """Where each topic ends now, per partition, in the JSON shape Spark uses for offsets."""
    s = s or settings_module.get()
    consumer = peek_consumer(s)
    try:
        result = {}
        for name in topic_names:
            partitions = consumer.list_topics(name, timeout=10).topics[name].partitions
            result[name] = {str(p): watermarks(consumer, name, p)[1] for p in partitions}
        return result
    finally:
        consumer.close()


def existing_topics(s: settings_module.Settings | None = None) -> set[str]:
    return set(admin(s).list_topics(timeout=10).topics)


@dataclasses.dataclass
class Message:
    """A Kafka message decoded for display in a notebook."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: str | None
    value: bytes
    headers: dict[str, str]

    def text(self) -> str:
        return self.value.decode("utf-8", errors="replace")


def watermarks(consumer: Consumer, topic: str, partition: int, timeout: float = 10) -> tuple[int, int]:
    """(first offset, end offset) of a partition, retried while a new topic's leader settles."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        try:
            return consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=timeout)
        except KafkaException as error:
            transient = error.args[0].code() in (
                KafkaError.NOT_LEADER_FOR_PARTITION,
                KafkaError.LEADER_NOT_AVAILABLE,
                KafkaError.UNKNOWN_TOPIC_OR_PART,
            )
            if not transient or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


#: How long the broker may hold a peeking consumer's fetch at the end of a partition
#: (``peek_consumer`` says why).
PEEK_FETCH_WAIT_MS = 10


def peek_consumer(s: settings_module.Settings) -> Consumer:
    """A consumer in a throw-away group that never commits: peeking moves nobody's offsets.

    It reads what a topic holds now and stops at the end (``enable.partition.eof``). The end is
    known only when the broker answers a fetch with nothing new, and a broker holds such a fetch
    for ``fetch.wait.max.ms`` (500 ms by default) in case a record arrives: half a second per
    topic read. Peeking does not wait for new records, so it asks for 10 ms (one raw topic of
    482 readings: 0.57 s -> 0.08 s).
    """
    return Consumer(
        client_config(
            s,
            **{
                "group.id": f"labkit-peek-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
                "enable.partition.eof": True,
                "fetch.wait.max.ms": PEEK_FETCH_WAIT_MS,
            },
        )
    )


def last_messages(
    topic: str, n: int = 5, s: settings_module.Settings | None = None, timeout: float = 10
) -> list[Message]:
    """The last ``n`` messages of each partition of ``topic``, oldest first."""
    s = s or settings_module.get()
    consumer = peek_consumer(s)
    try:
        metadata = consumer.list_topics(topic, timeout=timeout).topics[topic]
        if metadata.error is not None:
            raise LabkitError(
                f"topic {topic} is not available: {metadata.error.str()}",
                "create the lab's topics with `labkit topics`",
            )
        assignments, remaining = [], 0
        for p in metadata.partitions:
            low, high = watermarks(consumer, topic, p, timeout)
            start = max(low, high - n)
            if high > start:
                assignments.append(TopicPartition(topic, p, start))
                remaining += 1
        if not assignments:
            return []
        consumer.assign(assignments)
        return _drain(consumer, remaining, timeout)
    finally:
        consumer.close()


def _drain(consumer: Consumer, partitions_left: int, timeout: float) -> list[Message]:
    """Poll until every assigned partition reports its end."""
    import time

    messages, deadline = [], time.monotonic() + timeout
    while partitions_left and time.monotonic() < deadline:
        m = consumer.poll(0.5)
        if m is None:
            continue
        if m.error():
            if m.error().code() == KafkaError._PARTITION_EOF:
                partitions_left -= 1
                continue
            raise LabkitError(f"reading {m.topic()} failed: {m.error().str()}", "check `labkit status`")
        headers = {k: (v or b"").decode("utf-8", "replace") for k, v in (m.headers() or [])}
        key = m.key().decode("utf-8", "replace") if m.key() is not None else None
        messages.append(Message(m.topic(), m.partition(), m.offset(), m.timestamp()[1], key, m.value(), headers))
    return messages


def read_all(
    topic: str, s: settings_module.Settings | None = None, timeout: float = 30, since: dict[str, int] | None = None
) -> list[Message]:
    """Every message still held in ``topic``, from the beginning to the current end.

    ``since``: where to start in each partition instead, ``{"0": offset}`` (the shape of
    ``feed.through_bridge``'s ``before``), so a check of one lesson's readings does not read
    every reading the topic holds.
    """
    s = s or settings_module.get()
    consumer = peek_consumer(s)
    try:
        metadata = consumer.list_topics(topic, timeout=timeout).topics[topic]
        assignments = []
        for p in metadata.partitions:
            low, high = watermarks(consumer, topic, p, timeout)
            start = max(low, (since or {}).get(str(p), low))
            if high > start:
                assignments.append(TopicPartition(topic, p, start))
        if not assignments:
            return []
        consumer.assign(assignments)
        return _drain(consumer, len(assignments), timeout)
    finally:
        consumer.close()


def reset_consumer_group(
    group: str, topic_names: list[str], to_timestamp_ms: int | None = None, s: settings_module.Settings | None = None
) -> dict[str, int]:
    """Move ``group``'s committed offsets back to the beginning, or to the first record at or
    after ``to_timestamp_ms``. The group must have no running members (Kafka refuses otherwise).
    Returns the new offsets as ``{"topic:partition": offset}``.
    """
    s = s or settings_module.get()
    consumer = peek_consumer(s)
    try:
        partitions = [
            TopicPartition(t, p) for t in topic_names for p in consumer.list_topics(t, timeout=10).topics[t].partitions
        ]
        if to_timestamp_ms is None:
            targets = [
                TopicPartition(tp.topic, tp.partition, watermarks(consumer, tp.topic, tp.partition)[0])
                for tp in partitions
            ]
        else:
            asked = [TopicPartition(tp.topic, tp.partition, to_timestamp_ms) for tp in partitions]
            targets = consumer.offsets_for_times(asked, timeout=10)
            # past the last record: offsets_for_times answers -1, which means "the end"
            targets = [
                tp
                if tp.offset >= 0
                else TopicPartition(tp.topic, tp.partition, watermarks(consumer, tp.topic, tp.partition)[1])
                for tp in targets
            ]
    finally:
        consumer.close()
    client = admin(s)
    futures = client.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(group, targets)])
    for future in futures.values():
        future.result()
    return {f"{tp.topic}:{tp.partition}": tp.offset for tp in targets}
