"""Fetch the Maven artifacts the lab needs, once, into a local cache.

Three groups of jars, each resolved with its dependencies into a folder of its own:

* ``spark``: the Kafka connector and Delta Lake, at the versions that match the installed
  pyspark and delta-spark packages (Delta's artifact name carries the Spark minor version).
* ``kafka``: an Apache Kafka broker, which the embedded profile runs in KRaft mode.
* ``s3a``: hadoop-aws and its AWS SDK, only when the lake is an ``s3a://`` bucket (hundreds of
  MB, so the embedded default never downloads it).

Why not ``spark.jars.packages``? It asks the Maven resolver at *every* session start, so a
learner without network (a workshop Wi-Fi...) cannot start Spark even with a warm cache. Here
the resolver runs once; afterwards a ``manifest.json`` lists the files, and Spark gets them
through ``spark.jars``, which never touches the network.

The resolver is Apache Ivy, the same one Spark uses for ``--packages``: its jar ships inside
the pyspark wheel, so nothing else needs installing. Set ``LABKIT_MAVEN_REPO`` to use a mirror.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess
import tempfile
from importlib import metadata
from pathlib import Path
from xml.sax.saxutils import quoteattr

from labkit import settings as settings_module
from labkit.errors import LabkitError
from labkit.progress import Ticker
from labkit.stack.java import require_java

SCALA_BINARY = "2.13"
SLF4J_VERSION = "2.0.17"
SQLITE_JDBC_VERSION = "3.54.1.0"


@dataclasses.dataclass(frozen=True)
class Artifact:
    group: str
    name: str
    version: str

    def __str__(self) -> str:
        return f"{self.group}:{self.name}:{self.version}"


def pyspark_home() -> Path:
    """The folder of the installed pyspark package (it holds ``jars/`` and ``bin/``)."""
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def _pyspark_jar_version(prefix: str) -> str:
    """The version of a jar bundled with pyspark, e.g. ``hadoop-client-api`` -> ``3.5.0``."""
    for jar in (pyspark_home() / "jars").glob(f"{prefix}-*.jar"):
        match = re.fullmatch(re.escape(prefix) + r"-(\d[\w.]*)\.jar", jar.name)
        if match:
            return match.group(1)
    raise LabkitError(f"pyspark's jars folder has no {prefix} jar.", "reinstall pyspark")


def spark_artifacts() -> list[Artifact]:
    """The Kafka connector and Delta Lake built for the installed pyspark, and SQLite's driver."""
    spark_version = metadata.version("pyspark")
    spark_minor = ".".join(spark_version.split(".")[:2])
    delta_version = metadata.version("delta-spark")
    return [
        Artifact("org.apache.spark", f"spark-sql-kafka-0-10_{SCALA_BINARY}", spark_version),
        Artifact("io.delta", f"delta-spark_{spark_minor}_{SCALA_BINARY}", delta_version),
        # the JDBC driver that lets Spark read the SQLite rooms table (the stream-static join)
        Artifact("org.xerial", "sqlite-jdbc", SQLITE_JDBC_VERSION),
    ]


def kafka_artifacts(kafka_version: str) -> list[Artifact]:
    """An Apache Kafka broker, plus a simple logger so its log goes to stderr (our log file)."""
    return [
        Artifact("org.apache.kafka", f"kafka_{SCALA_BINARY}", kafka_version),
        Artifact("org.slf4j", "slf4j-simple", SLF4J_VERSION),
    ]


def s3a_artifacts() -> list[Artifact]:
    """hadoop-aws at the Hadoop version pyspark bundles (they must match exactly)."""
    return [Artifact("org.apache.hadoop", "hadoop-aws", _pyspark_jar_version("hadoop-client-api"))]


def _group_for(name: str, s: settings_module.Settings) -> tuple[list[Artifact], bool]:
    """The artifacts of a group, and whether jars pyspark already has should be left out."""
    if name == "spark":
        return spark_artifacts(), True
    if name == "kafka":
        return kafka_artifacts(s.kafka_version), False
    if name == "s3a":
        return s3a_artifacts(), True
    raise ValueError(f"unknown jar group {name!r}: use spark, kafka or s3a")


def _folder_name(name: str, artifacts: list[Artifact]) -> str:
    return name + "-" + "_".join(f"{a.name}-{a.version}" for a in artifacts)


def _ivy_settings(repo: str, cache: Path) -> str:
    # Without a root, Ivy's ibiblio resolver uses Maven Central.
    root = f" root={quoteattr(repo)}" if repo else ""
    return f"""<ivysettings>
  <settings defaultResolver="main"/>
  <caches defaultCacheDir={quoteattr(str(cache))}/>
  <resolvers><ibiblio name="main" m2compatible="true"{root}/></resolvers>
</ivysettings>
"""


def _ivy_module(name: str, artifacts: list[Artifact]) -> str:
    lines = [
        f'    <dependency org="{a.group}" name="{a.name}" rev="{a.version}" conf="default->default"/>'
        for a in artifacts
    ]
    return (
        '<ivy-module version="2.0">\n'
        f'  <info organisation="labkit" module="{name}"/>\n'
        "  <dependencies>\n" + "\n".join(lines) + "\n  </dependencies>\n</ivy-module>\n"
    )


def _already_in_pyspark(artifact_name: str) -> bool:
    """True when pyspark ships a jar of this artifact: keep Spark's own version of it."""
    return any(
        re.fullmatch(re.escape(artifact_name) + r"-\d.*\.jar", jar.name)
        for jar in (pyspark_home() / "jars").glob(f"{artifact_name}-*.jar")
    )


def _run_ivy(name: str, artifacts: list[Artifact], work: Path, out: Path, repo: str, cache: Path) -> None:
    """Resolve ``artifacts`` with Ivy into ``out/<artifact>/<file>.jar``, showing progress."""
    (work / "ivysettings.xml").write_text(_ivy_settings(repo, cache))
    (work / "ivy.xml").write_text(_ivy_module(name, artifacts))
    command = [
        str(require_java()),
        "-cp",
        str(next((pyspark_home() / "jars").glob("ivy-*.jar"))),
        "org.apache.ivy.Main",
        "-settings",
        str(work / "ivysettings.xml"),
        "-ivy",
        str(work / "ivy.xml"),
        "-confs",
        "default",
        "-types",
        "jar",
        "bundle",
        "-retrieve",
        str(out) + "/[artifact]/[artifact]-[revision](-[classifier]).[ext]",
    ]
    ticker = Ticker(f"fetching {name} jars ({', '.join(map(str, artifacts))}):")
    found = downloaded = 0
    log = []
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as ivy:
        for line in ivy.stdout:
            log.append(line.rstrip())
            found += "\tfound " in line
            downloaded += "[SUCCESSFUL ]" in line
            ticker.update(f"{found} modules found, {downloaded} files downloaded")
    if ivy.returncode != 0:
        unresolved = [line.strip(" :\t") for line in log if re.search(r"::\s+\S+#\S+;.*:", line)]
        where = repo or "Maven Central"
        raise LabkitError(
            f"could not fetch the {name} jars from {where}: " + ("; ".join(unresolved) or "\n".join(log[-15:])),
            "check the network (a proxy?), or set LABKIT_MAVEN_REPO to a reachable Maven "
            "repository or mirror, then run `labkit jars` again",
        )
    ticker.done(f"{downloaded} files downloaded")


def resolve(name: str, s: settings_module.Settings | None = None) -> list[Path]:
    """The jar files of group ``name`` (``spark``, ``kafka`` or ``s3a``), fetched if needed.

    The first call downloads; every later call reads ``manifest.json`` and needs no network.
    """
    s = s or settings_module.get()
    artifacts, skip_pyspark_jars = _group_for(name, s)
    folder = s.jars_dir / _folder_name(name, artifacts)
    manifest = folder / "manifest.json"
    if manifest.exists():
        files = [folder / f for f in json.loads(manifest.read_text())["jars"]]
        if all(f.exists() for f in files):
            return files

    s.jars_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=s.jars_dir, prefix=".resolving-") as tmp:
        work = Path(tmp)
        _run_ivy(name, artifacts, work, work / "out", s.maven_repo, s.jars_dir / "ivy-cache")
        kept = sorted(
            jar
            for artifact_dir in (work / "out").iterdir()
            if not (skip_pyspark_jars and _already_in_pyspark(artifact_dir.name))
            for jar in artifact_dir.glob("*.jar")
        )
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        for jar in kept:
            shutil.move(str(jar), folder / jar.name)
    manifest.write_text(
        json.dumps({"artifacts": [str(a) for a in artifacts], "jars": [j.name for j in kept]}, indent=2)
    )
    return [folder / j.name for j in kept]


def is_cached(name: str, s: settings_module.Settings | None = None) -> bool:
    """Whether ``resolve(name)`` would work offline (``labkit doctor`` asks)."""
    s = s or settings_module.get()
    artifacts, _ = _group_for(name, s)
    return (s.jars_dir / _folder_name(name, artifacts) / "manifest.json").exists()
