"""Publish and subscribe through the MQTT brokers labkit starts: Mosquitto and amqtt."""

import os
import threading
import uuid

import paho.mqtt.client as mqtt
import pytest

from labkit import settings, stack
from labkit.stack import processes, services

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
    s = settings.load({**os.environ, "LABKIT_MQTT_BROKER": "amqtt", "LABKIT_MQTT_PORT": "32884",
                       "LABKIT_STATE_DIR": str(tmp_path / "state")})
    try:
        statuses = stack.up(s, only=["mqtt"])
        mqtt_status = next(st for st in statuses if st.name == "mqtt")
        assert mqtt_status.healthy
        assert "amqtt" in " ".join(processes.running_process(s, "mqtt").cmdline())
        expected = [f"message {i}".encode() for i in range(50)]
        assert round_trip(s.mqtt_host, s.mqtt_port) == expected
    finally:
        stack.down(s)
