"""labkit.mqtt (the one connect), and publish/subscribe through the brokers labkit starts: Mosquitto and amqtt."""

import os
import threading
import uuid

import paho.mqtt.client as mqtt
import pytest

from labkit import mqtt as lab_mqtt
from labkit import settings, stack
from labkit.errors import LabkitError
from labkit.stack import processes, services
from labkit.stack.probes import port_open

pytestmark = pytest.mark.services


def round_trip(host: str, port: int, count: int = 50) -> list[bytes]:
    """Subscribe, publish ``count`` QoS 1 messages, and return what the subscriber received."""
    topic = f"labkit-test/{uuid.uuid4().hex[:8]}"
    received, subscribed, all_in = [], threading.Event(), threading.Event()

    def on_message(client, userdata, message):
        received.append(message.payload)
        if len(received) == count:
            all_in.set()

    subscriber = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    subscriber.on_message = on_message
    subscriber.on_subscribe = lambda *args: subscribed.set()
    subscriber.connect(host, port)
    subscriber.subscribe(topic, qos=1)
    subscriber.loop_start()
    publisher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    publisher.connect(host, port)
    publisher.loop_start()
    try:
        assert subscribed.wait(10), "the broker never acknowledged the subscription"
        infos = [publisher.publish(topic, f"message {i}".encode(), qos=1) for i in range(count)]
        for info in infos:
            info.wait_for_publish(timeout=10)
        all_in.wait(10)
    finally:
        publisher.loop_stop()
        subscriber.loop_stop()
        publisher.disconnect()
        subscriber.disconnect()
    return received


def test_publish_subscribe_through_the_stack_broker(stack):
    expected = [f"message {i}".encode() for i in range(50)]
    assert round_trip(stack.mqtt_host, stack.mqtt_port) == expected


@pytest.mark.skipif(services.mosquitto_binary() is None, reason="mosquitto is not installed")
def test_mosquitto_is_preferred_when_installed():
    assert services.chosen_mqtt_broker(settings.load({})) == "mosquitto"


def test_the_pip_only_broker_works_too(tmp_path):
    """Without mosquitto (or with LABKIT_MQTT_BROKER=amqtt) the lab falls back to amqtt."""
    s = settings.load(
        {
            **os.environ,
            "LABKIT_MQTT_BROKER": "amqtt",
            "LABKIT_MQTT_PORT": "32884",
            "LABKIT_STATE_DIR": str(tmp_path / "state"),
        }
    )
    try:
        statuses = stack.up(s, only=["mqtt"])
        mqtt_status = next(st for st in statuses if st.name == "mqtt")
        assert mqtt_status.healthy
        assert "amqtt" in " ".join(processes.running_process(s, "mqtt").cmdline())
        expected = [f"message {i}".encode() for i in range(50)]
        assert round_trip(s.mqtt_host, s.mqtt_port) == expected
    finally:
        stack.down(s)


def closed_port() -> int:
    """A port of this test instance's range where nothing listens."""
    port = settings.get().mqtt_port + 7
    assert not port_open("127.0.0.1", port)
    return port


def test_connect_to_no_broker_says_what_to_do():
    with pytest.raises(LabkitError, match="cannot reach the MQTT broker") as failure:
        lab_mqtt.connect("labkit-test-nobody", "127.0.0.1", closed_port())
    assert "labkit up" in failure.value.next_step
    assert lab_mqtt.answers("127.0.0.1", closed_port()) is False


def test_connect_returns_an_accepted_client_and_runs_on_connect(stack):
    seen = []
    client = lab_mqtt.connect(
        f"labkit-test-{uuid.uuid4().hex[:6]}", stack.mqtt_host, stack.mqtt_port, on_connect=lambda c: seen.append(c)
    )
    try:
        assert client.is_connected() and seen == [client]
    finally:
        client.disconnect()
        client.loop_stop()
    assert lab_mqtt.answers(stack.mqtt_host, stack.mqtt_port) is True


def queued_while_away(host: str, port: int, count: int, while_away=lambda: None) -> list[bytes]:
    """A persistent session subscribes and leaves; ``count`` messages are published; it comes back.

    ``while_away`` runs after the publishing, before the return (a broker restart, say). Returns
    what the session received on its return, in order.
    """
    client_id, topic = f"labkit-test-{uuid.uuid4().hex[:6]}", f"labkit-test/{uuid.uuid4().hex[:6]}"
    subscribed = threading.Event()
    away = lab_mqtt.connect(
        client_id,
        host,
        port,
        clean_session=False,
        on_connect=lambda c: c.subscribe(topic, qos=1),
        on_subscribe=lambda *args: subscribed.set(),
    )
    assert subscribed.wait(10)
    away.disconnect()
    away.loop_stop()
    publisher = lab_mqtt.connect(f"labkit-test-pub-{uuid.uuid4().hex[:6]}", host, port)
    for i in range(count):
        publisher.publish(topic, f"queued {i}".encode(), qos=1).wait_for_publish(10)
    publisher.disconnect()
    publisher.loop_stop()
    while_away()

    received, all_in = [], threading.Event()

    def on_message(client, userdata, message):
        received.append(message.payload)
        if len(received) == count:
            all_in.set()

    back = lab_mqtt.connect(client_id, host, port, clean_session=False, on_message=on_message)
    try:
        all_in.wait(10)
    finally:
        back.disconnect()
        back.loop_stop()
    return received


def test_a_persistent_session_gets_what_was_queued_while_it_was_away(stack):
    """What the bridge relies on: on_message is in place before the broker resends the queue."""
    received = queued_while_away(stack.mqtt_host, stack.mqtt_port, 20)
    assert received == [f"queued {i}".encode() for i in range(20)]


@pytest.mark.skipif(services.mosquitto_binary() is None, reason="mosquitto is not installed")
def test_mosquitto_keeps_sessions_and_queues_across_its_own_restart(tmp_path):
    """A broker restart (here a clean one, which saves) keeps a persistent session's subscription and queue.

    Fails where Mosquitto cannot write its data folder: started as root it drops to the
    `mosquitto` user, and a folder only root may write makes every save fail, quietly.
    """
    from conftest import free_port

    s = settings.load(
        {
            **os.environ,
            "LABKIT_MQTT_BROKER": "mosquitto",
            "LABKIT_MQTT_PORT": str(free_port()),
            "LABKIT_STATE_DIR": str(tmp_path / "state"),
        }
    )

    def restart_the_broker():
        stack.down(s, only=["mqtt"])
        stack.up(s, only=["mqtt"])

    stack.up(s, only=["mqtt"])
    try:
        received = queued_while_away(s.mqtt_host, s.mqtt_port, 5, while_away=restart_the_broker)
    finally:
        stack.down(s, only=["mqtt"])
    log = (s.state_dir / "logs" / "mqtt.log").read_text()
    assert "Error saving" not in log, log[-2000:]
    assert received == [f"queued {i}".encode() for i in range(5)]
