"""labkit.topics: the lab's topics and their retention, reading back through the embedded Kafka broker, admin."""

import uuid

import pytest
from confluent_kafka import Producer

from labkit import names, topics

pytestmark = pytest.mark.services


def test_lab_topics_are_raw_downsampled_and_dead_letter():
    lab_topics = topics.lab_topics(["room_1", "room_2"])
    assert sorted(lab_topics) == sorted(
        [
            "telemetry.room_1",
            "telemetry.room_2",
            "telemetry.room_1.downsampled",
            "telemetry.room_2.downsampled",
            "telemetry.dlq",
        ]
    )


def test_lab_topics_are_created_once_with_three_day_retention(stack):
    lab_topics = topics.lab_topics(["room_1", "room_2", "room_3"])
    topics.ensure_topics(lab_topics)
    topics.ensure_topics(lab_topics)  # idempotent: no error the second time
    assert set(lab_topics) <= topics.existing_topics()
    for name in lab_topics:
        config = topics.topic_config(name)
        assert int(config["retention.ms"]) == 3 * 24 * 3600 * 1000
        # segments roll hourly, so retention (which deletes closed segments) holds to the hour
        assert int(config["segment.ms"]) == 3600 * 1000


def test_retention_of_an_existing_topic_is_corrected(stack):
    from confluent_kafka.admin import NewTopic

    name = f"test.retention.{uuid.uuid4().hex[:6]}"
    client = topics.admin()
    client.create_topics([NewTopic(name, 1, 1, config={"retention.ms": "1000"})])[name].result()
    topics.ensure_topics([name])
    assert topics.topic_config(name)["retention.ms"] == str(3 * 24 * 3600 * 1000)
    assert topics.topic_config(name)["segment.ms"] == str(3600 * 1000)


def test_produce_then_read_back_in_order(stack):
    name = f"test.produce.{uuid.uuid4().hex[:6]}"
    topics.ensure_topics([name])
    producer = Producer({"bootstrap.servers": stack.kafka_bootstrap, "enable.idempotence": True})
    sent = [f"reading {i}".encode() for i in range(200)]
    for value in sent:
        producer.produce(name, key=b"room_1", value=value, headers={"source": b"test"})
    assert producer.flush(30) == 0
    everything = topics.read_all(name)
    assert [m.value for m in everything] == sent
    assert all(m.key == "room_1" and m.headers == {"source": "test"} for m in everything)
    last = topics.last_messages(name, 5)
    assert [m.value for m in last] == sent[-5:]
    assert [m.offset for m in last] == list(range(195, 200))
    since = topics.read_all(name, since={"0": 150})
    assert [m.offset for m in since] == list(range(150, 200)), "read from the given offset to the end"
    assert topics.read_all(name, since={"0": 200}) == [], "nothing after the end"


def test_last_messages_of_an_empty_topic_is_empty(stack):
    name = f"test.empty.{uuid.uuid4().hex[:6]}"
    topics.ensure_topics([name])
    assert topics.last_messages(name, 5) == []


def test_reset_consumer_group_moves_offsets_back(stack, published):
    from confluent_kafka import Consumer, TopicPartition

    name = names.raw_topic("room_2")
    group = "dashboard-test"
    consumer = Consumer(
        {
            "bootstrap.servers": stack.kafka_bootstrap,
            "group.id": group,
            "enable.auto.commit": False,
            "auto.offset.reset": "latest",
        }
    )
    end = published["after"][name]["0"]
    consumer.commit(offsets=[TopicPartition(name, 0, end)], asynchronous=False)
    consumer.close()
    moved = topics.reset_consumer_group(group, [name])
    assert moved[f"{name}:0"] == 0
    consumer = Consumer({"bootstrap.servers": stack.kafka_bootstrap, "group.id": group})
    committed = consumer.committed([TopicPartition(name, 0)], timeout=10)[0].offset
    consumer.close()
    assert committed == 0
