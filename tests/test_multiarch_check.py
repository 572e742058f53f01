"""tools/multiarch_check.py: the image pins against the recorded table, and the wheel rules.

The real wheel check asks PyPI (`.ci/run` runs it); here its rules are checked offline on file
names as PyPI lists them, including ones that must fail.
"""

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _load():
    spec = importlib.util.spec_from_file_location("multiarch_check", ROOT / "tools" / "multiarch_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


multiarch = _load()

# confluent-kafka 2.16.1 on PyPI (cp311 files), as its JSON API listed them on 2026-11-29
CONFLUENT = [
    "confluent_kafka-2.16.1-cp311-cp311-macosx_11_0_arm64.whl",
    "confluent_kafka-2.16.1-cp311-cp311-manylinux_2_28_aarch64.whl",
    "confluent_kafka-2.16.1-cp311-cp311-manylinux_2_28_x86_64.whl",
    "confluent_kafka-2.16.1-cp311-cp311-win_amd64.whl",
]


def test_every_pinned_image_is_recorded_for_amd64_and_arm64():
    images = multiarch.pinned_images()
    assert "quay.io/minio/minio:RELEASE.2025-04-22T22-12-26Z" in images
    assert any(i.startswith("docker.io/library/python:") for i in images), "the Dockerfile's FROM is checked too"
    assert multiarch.check_images(images, multiarch.read_table()) == []


def test_an_image_without_arm64_or_without_a_row_fails():
    table = multiarch.read_table()
    image = "docker.io/redpandadata/redpanda:v26.1.9"
    amd64_only = {**table, image: {**table[image], "platforms": "linux/amd64"}}
    assert "linux/arm64" in multiarch.check_images({image: "compose"}, amd64_only)[0]
    assert "not in" in multiarch.check_images({"docker.io/redpandadata/redpanda:v99": "compose"}, table)[0]


def test_wheels_for_both_linux_arches_pass_and_a_missing_one_fails():
    assert multiarch.check_files("confluent-kafka", "2.16.1", CONFLUENT) == []
    no_arm = [f for f in CONFLUENT if "aarch64" not in f]
    assert multiarch.check_files("confluent-kafka", "2.16.1", no_arm) == [
        "confluent-kafka==2.16.1: no wheel for linux/arm64 and CPython 3.11"
    ]


def test_wheel_tags_the_image_cannot_install_do_not_count():
    assert not multiarch.installable("x-1.0-cp312-cp312-manylinux_2_28_aarch64.whl", "arm64"), "another Python"
    assert not multiarch.installable("x-1.0-cp311-cp311-musllinux_1_2_aarch64.whl", "arm64"), "musl, not glibc"
    assert not multiarch.installable("x-1.0-cp311-cp311-manylinux_2_39_aarch64.whl", "arm64"), "glibc newer than 2.36"
    assert multiarch.installable("x-1.0-cp39-abi3-manylinux2014_aarch64.whl", "arm64"), "abi3 from 3.9 works on 3.11"
    assert multiarch.installable("x-1.0-py3-none-any.whl", "amd64")


def test_sdist_only_packages_must_be_known_pure_python():
    assert multiarch.check_files("pyspark", "4.2.0", ["pyspark-4.2.0.tar.gz"]) == []
    assert "only an sdist" in multiarch.check_files("something", "1.0", ["something-1.0.tar.gz"])[0]


def test_the_install_set_follows_requirements_from_pyproject():
    packages = multiarch.lab_image_packages()
    assert packages["pyspark"] == "4.2.0" and "py4j" in packages, "pyspark's own requirement is followed"
    assert "moto" not in packages and "duckdb" not in packages, "the test extra is not installed in the image"
    assert sys.version_info[:2] == multiarch.PYTHON, "versions resolved on the image's Python"
