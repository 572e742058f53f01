"""labkit.settings: defaults per profile, overrides, and errors that say what to fix."""

import dataclasses
import os
from pathlib import Path

import pytest

from labkit import settings
from labkit.errors import LabkitError


def test_embedded_is_the_default_and_points_at_this_machine():
    s = settings.load({})
    assert s.profile == "embedded"
    # Not 1883: Debian's mosquitto package (a README prerequisite) runs a system broker there.
    assert s.mqtt_host == "127.0.0.1" and s.mqtt_port == 11883
    assert s.kafka_bootstrap == "127.0.0.1:9092"
    assert s.spark_master.startswith("local[")
    assert Path(s.lake_root).is_absolute(), "a local lake root is made absolute"


def test_compose_profile_points_at_the_docker_services():
    s = settings.load({"LABKIT_PROFILE": "compose"})
    assert s.kafka_bootstrap == "redpanda:9092"
    assert s.mqtt_host == "mosquitto"
    assert s.spark_master.startswith("spark://")
    assert s.lake_root == "s3a://datalake"
    assert s.table_path("telemetry_5s_agg") == "s3a://datalake/telemetry_5s_agg"
    assert s.checkpoint_path("agg") == "s3a://datalake/_checkpoints/agg"


def test_every_variable_overrides_its_setting(tmp_path):
    s = settings.load(
        {
            "LABKIT_HOME": str(tmp_path),
            "LABKIT_KAFKA_PORT": "19092",
            "LABKIT_MQTT_HOST": "broker.local",
            "LABKIT_LAKE_ROOT": "my-lake",
            "LABKIT_METADATA_DB": "/abs/meta.db",
        }
    )
    assert s.kafka_port == 19092 and s.kafka_bootstrap.endswith(":19092")
    assert s.mqtt_host == "broker.local"
    assert s.lake_root == str(tmp_path / "my-lake"), "relative paths are anchored at LABKIT_HOME"
    assert s.metadata_db == Path("/abs/meta.db")


def test_every_documented_variable_is_read():
    """The ENVIRONMENT table is the documentation: each entry must change a setting."""
    base = settings.load({"LABKIT_HOME": "/tmp"})
    # values that are valid for these variables (4242 is a port, a count, a version, a folder...)
    valid = {
        "LABKIT_MAVEN_REPO": "https://repo.example.com/maven2/",
        "LABKIT_MQTT_BROKER": "amqtt",
        "LABKIT_SPARK_MASTER": "local[4]",
        "LABKIT_S3_ENDPOINT": "http://127.0.0.1:4242",
    }
    for name, (default, _, _) in settings.ENVIRONMENT.items():
        if name in ("LABKIT_PROFILE", "LABKIT_HOME"):
            continue
        changed = settings.load({"LABKIT_HOME": "/tmp", name: valid.get(name, "4242")})
        assert changed != base, f"{name} is documented but changes nothing"


def test_settings_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.load({}).kafka_port = 1


def test_unknown_profile_and_bad_numbers_are_explained():
    with pytest.raises(LabkitError, match="embedded, compose"):
        settings.load({"LABKIT_PROFILE": "cloud"})
    with pytest.raises(LabkitError, match="LABKIT_KAFKA_PORT"):
        settings.load({"LABKIT_KAFKA_PORT": "ninety"})
    with pytest.raises(LabkitError, match="LABKIT_SPARK_MASTER"):
        settings.load({"LABKIT_SPARK_MASTER": "local[two]"})


def test_describe_hides_secrets():
    text = settings.describe(settings.load({"AWS_SECRET_ACCESS_KEY": "hunter2"}))
    assert "hunter2" not in text
    assert "LABKIT_KAFKA_PORT" in text


def test_use_profile_none_keeps_the_environment_and_a_name_switches(monkeypatch):
    """A notebook's ``profile`` parameter: None changes nothing; a name reaches child processes."""
    monkeypatch.setenv("LABKIT_PROFILE", "embedded")
    settings.get.cache_clear()
    try:
        assert settings.use_profile(None).profile == "embedded"
        chosen = settings.use_profile(" Compose ")
        assert chosen.profile == "compose" and chosen.kafka_host == "redpanda"
        assert settings.get() is chosen, "later calls of get() see the chosen profile"
        assert os.environ["LABKIT_PROFILE"] == "compose", "a process the notebook starts makes the same choice"
        assert settings.use_profile(None).profile == "compose", "None keeps the choice made"
        with pytest.raises(LabkitError, match=r"embedded, compose \(or None\)"):
            settings.use_profile("docker")
        assert settings.get().profile == "compose", "a refused name changes nothing"
    finally:
        monkeypatch.undo()
        settings.get.cache_clear()
