"""labkit: the companion library of the smart-building streaming lab.

Each module does one job; notebooks import the ones they need::

    from labkit import settings, stack, topics, spark

``PARTS`` below lists every module, part by part: first the foundation every part may use, then
the data path from the sensors to the lake, then the tools around it. A module imports only
modules listed before it (``tests/test_layers.py`` checks that, and which parts may import which);
``docs/architecture.md`` draws the same map.
"""

__version__ = "0.1.0"

PARTS: dict[str, tuple[str, ...]] = {
    # names every part shares, the settings, errors, progress lines, the two record schemas
    "foundation": ("names", "errors", "settings", "progress", "schema"),
    # clients of the two brokers: MQTT connect, Kafka topics and admin
    "clients": ("mqtt", "topics"),
    # the services themselves: start, check, stop (and Java and the Maven jars they need)
    "stack": ("stack",),
    # where readings come from: the rooms, the simulated sensors, the rooms' metadata table
    "source": ("rooms", "simulator", "metadata"),
    # MQTT -> Kafka
    "transport": ("bridge",),
    # Spark: the session, what a restart reads from a checkpoint, the streaming job, watching it,
    # the Delta table's past, replays, the alert job, occupancy sessions, the 1- and 5-minute
    # rollups and the data-quality watch beside it
    "processing": (
        "spark",
        "checkpoints",
        "pipeline",
        "watch",
        "lake",
        "replay",
        "alerts",
        "sessions",
        "rollups",
        "quality",
    ),
    # the same windows computed in plain Python from the raw records: the yardstick the tests, the
    # lessons' checks and the exercises' hints hold the stream to (it never imports Spark)
    "yardstick": ("reference",),
    # for the notebooks and exercises: hints, checks, the typical mistakes they recognise, pictures
    "notebook aids": ("hints", "checks", "mistakes", "viz"),
    # downstream of the job: its progress read from the checkpoint, the output topics consumed,
    # the live dashboard, and the loader into PostgreSQL for Grafana
    "downstream": ("progress_log", "downstream", "dashboard", "warehouse"),
    # the whole path in one call: a lesson's readings, a stream job as a process, the demo, the
    # machine's check (doctor), the CLI
    "entry points": ("feed", "jobs", "demo", "doctor", "cli", "__main__"),
}

#: Every module, in the order above.
MODULES: tuple[str, ...] = tuple(module for modules in PARTS.values() for module in modules)
