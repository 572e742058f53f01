"""The room metadata: a small SQLite table that the stream is joined with.

Sensors send only a ``room_id``. The name, floor and type of a room change rarely and belong to
facilities management, not to the sensor, so they live in a *dimension table* (SQLite file
``data/metadata.db``, table ``rooms``). The Spark job reads it and joins it to every window:
a stream-static join.

A second table, ``thresholds``, holds the alert limits of each room *type* (a server room is
too hot above 24 °C, a kitchen only above 28 °C): the alert job (``labkit.alerts``) joins it
through ``rooms.room_type``, so facilities can tune a limit without touching the job.

The rooms table is filled from ``labkit.rooms``, so it always describes the same building as the
simulator. :func:`update_room` changes a row, which is how a lesson shows what a stream-static
join does when the static side changes while the stream runs.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from typing import Any, Iterator

from labkit import names, rooms, settings
from labkit.errors import LabkitError

COLUMNS: tuple[str, ...] = ("room_id", "room_name", "floor", "room_type", "area_m2", "capacity")

CREATE_TABLE = f"""
CREATE TABLE IF NOT EXISTS {names.ROOMS_TABLE} (
    room_id   TEXT PRIMARY KEY,
    room_name TEXT NOT NULL,
    floor     INTEGER NOT NULL,
    room_type TEXT NOT NULL,
    area_m2   REAL NOT NULL,
    capacity  INTEGER NOT NULL
)
"""

# An upsert: a new room is inserted, an existing one is brought back to its profile. Running
# init_metadata twice therefore leaves exactly the same rows, and it also repairs edits.
UPSERT_ROOM = f"""
INSERT INTO {names.ROOMS_TABLE} (room_id, room_name, floor, room_type, area_m2, capacity)
VALUES (:room_id, :room_name, :floor, :room_type, :area_m2, :capacity)
ON CONFLICT (room_id) DO UPDATE SET
    room_name = excluded.room_name,
    floor     = excluded.floor,
    room_type = excluded.room_type,
    area_m2   = excluded.area_m2,
    capacity  = excluded.capacity
"""


THRESHOLD_COLUMNS: tuple[str, ...] = (
    "room_type",
    "max_temperature",
    "max_co2_ppm",
    "spike_delta_c",
    "silent_after_s",
    "stuck_after_s",
)

CREATE_THRESHOLDS = f"""
CREATE TABLE IF NOT EXISTS {names.THRESHOLDS_TABLE} (
    room_type       TEXT PRIMARY KEY,
    max_temperature REAL NOT NULL,    -- degrees C: above it, a temperature_high alert
    max_co2_ppm     INTEGER NOT NULL, -- above it, a co2_high alert
    spike_delta_c   REAL NOT NULL,    -- degrees C away from the room's own recent baseline: a spike
    silent_after_s  REAL NOT NULL,    -- seconds of event time without a reading: a silent room
    stuck_after_s   REAL NOT NULL     -- seconds of exactly repeated values: a stuck sensor
)
"""

# Set from what the simulated rooms do on an ordinary day, so that a quiet day raises nothing:
# a kitchen warms by 4 degrees within a second when cooking starts (hence a wider spike band), a
# meeting or the lab's machines push CO2 past 1000 ppm, and the calmest rooms' smooth signals
# can repeat the same rounded values for minutes (a storage closet for ten, the break room at night
# for five), so "stuck" waits: these limits raise nothing over a simulated day (bench/alerts.py).
DEFAULT_THRESHOLDS: tuple[tuple[str, float, int, float, float, float], ...] = (
    # room_type,         max_temp, max_co2, spike_delta, silent_after, stuck_after
    ("server_room", 24.0, 1000, 4.0, 15.0, 300.0),
    ("conference_room", 27.0, 1300, 4.0, 15.0, 300.0),
    ("storage", 25.0, 1000, 4.0, 15.0, 1200.0),
    ("open_office", 27.0, 1000, 4.0, 15.0, 300.0),
    ("kitchen", 28.0, 1000, 6.0, 15.0, 300.0),
    ("lab", 29.0, 1300, 5.0, 15.0, 300.0),
    ("break_room", 27.0, 1000, 4.0, 15.0, 900.0),
    ("executive_office", 25.0, 1000, 4.0, 15.0, 300.0),
)

UPSERT_THRESHOLD = f"""
INSERT INTO {names.THRESHOLDS_TABLE} ({", ".join(THRESHOLD_COLUMNS)})
VALUES ({", ".join("?" for _ in THRESHOLD_COLUMNS)})
ON CONFLICT (room_type) DO UPDATE SET
""" + ",\n".join(f"    {c} = excluded.{c}" for c in THRESHOLD_COLUMNS[1:])


def _path(path: str | Path | None) -> Path:
    return Path(path) if path is not None else settings.get().metadata_db


@contextlib.contextmanager
def _connect(path: Path) -> Iterator[sqlite3.Connection]:
    """A connection that commits on success, rolls back on error, and is always closed.

    (``with sqlite3.connect(...)`` alone commits but leaves the file open.)
    """
    connection = sqlite3.connect(path)
    connection.row_factory = sqlite3.Row
    try:
        with connection:
            yield connection
    finally:
        connection.close()


def init_metadata(path: str | Path | None = None, n_rooms: int = names.DEFAULT_ROOM_COUNT) -> Path:
    """Create (or refresh) the ``rooms`` table with the profiles of ``room_ids(n_rooms)``, and
    the ``thresholds`` table with :data:`DEFAULT_THRESHOLDS`.

    ``path`` defaults to ``settings.get().metadata_db`` (``data/metadata.db``); the folder is
    created if needed. Pass ``n_rooms`` > 8 when the simulator runs more rooms for a load test,
    so that every room of the stream finds its row in the join. Returns the file's path.
    """
    db_path = _path(path)
    db_path.parent.mkdir(parents=True, exist_ok=True)
    with _connect(db_path) as connection:
        connection.execute(CREATE_TABLE)
        connection.executemany(UPSERT_ROOM, [profile_row(p) for p in rooms.profiles(n_rooms)])
        connection.execute(CREATE_THRESHOLDS)
        connection.executemany(UPSERT_THRESHOLD, DEFAULT_THRESHOLDS)
    return db_path


def read_thresholds(path: str | Path | None = None) -> dict[str, dict[str, Any]]:
    """The ``thresholds`` table: room_type -> its limits (a dict of the columns)."""
    db_path = _path(path)
    if not db_path.exists():
        raise LabkitError(f"no room metadata at {db_path}", "create it with labkit.metadata.init_metadata()")
    with _connect(db_path) as connection:
        rows = connection.execute(f"SELECT {', '.join(THRESHOLD_COLUMNS)} FROM {names.THRESHOLDS_TABLE}").fetchall()
    return {row["room_type"]: dict(row) for row in rows}


def update_threshold(path: str | Path | None, room_type: str, **changes: Any) -> dict[str, Any]:
    """Change the limits of one room type, e.g. ``update_threshold(None, "server_room", max_temperature=23)``.

    The alert job reads the table at every micro-batch, so the next batch uses the new limit.
    """
    unknown = sorted(set(changes) - set(THRESHOLD_COLUMNS[1:]))
    if unknown or not changes:
        raise LabkitError(
            f"cannot change {', '.join(unknown) or 'nothing'} of a threshold",
            f"change some of: {', '.join(THRESHOLD_COLUMNS[1:])}",
        )
    db_path = _path(path)
    assignments = ", ".join(f"{column} = :{column}" for column in changes)
    with _connect(db_path) as connection:
        cursor = connection.execute(
            f"UPDATE {names.THRESHOLDS_TABLE} SET {assignments} WHERE room_type = :room_type",
            {**changes, "room_type": room_type},
        )
        if cursor.rowcount == 0:
            raise LabkitError(
                f"room type {room_type!r} has no thresholds in {db_path}",
                "see labkit.metadata.read_thresholds() for the room types there",
            )
    return read_thresholds(db_path)[room_type]


def profile_row(room: rooms.RoomProfile) -> dict[str, Any]:
    """A room profile as a dict of the table's columns."""
    return {column: getattr(room, column) for column in COLUMNS}


def read_rooms(path: str | Path | None = None) -> list[dict[str, Any]]:
    """Every row of ``rooms`` as a dict, in room order (room_1, room_2, ..., room_10)."""
    db_path = _path(path)
    if not db_path.exists():
        raise LabkitError(
            f"no room metadata at {db_path}",
            "create it with labkit.metadata.init_metadata()",
        )
    with _connect(db_path) as connection:
        # Ordering by length first sorts room_2 before room_10, as a person would.
        rows = connection.execute(
            f"SELECT {', '.join(COLUMNS)} FROM {names.ROOMS_TABLE} ORDER BY length(room_id), room_id"
        ).fetchall()
    return [dict(row) for row in rows]


def update_room(path: str | Path | None, room_id: str, **changes: Any) -> dict[str, Any]:
    """Change some columns of one room, e.g. ``update_room(None, "room_2", room_name="Boardroom")``.

    Returns the row as it is now. The room must exist and only the descriptive columns may
    change (``room_id`` is the key the stream joins on).
    """
    allowed = set(COLUMNS) - {"room_id"}
    unknown = sorted(set(changes) - allowed)
    if unknown:
        raise LabkitError(
            f"cannot change {', '.join(unknown)} of a room",
            f"change only these columns: {', '.join(sorted(allowed))}",
        )
    if not changes:
        raise LabkitError("update_room was given nothing to change", "pass e.g. room_name='...'")
    db_path = _path(path)
    if not db_path.exists():
        raise LabkitError(f"no room metadata at {db_path}", "create it with labkit.metadata.init_metadata()")
    # Column names come from the fixed COLUMNS tuple (checked above), values are parameters.
    assignments = ", ".join(f"{column} = :{column}" for column in changes)
    with _connect(db_path) as connection:
        cursor = connection.execute(
            f"UPDATE {names.ROOMS_TABLE} SET {assignments} WHERE room_id = :room_id",
            {**changes, "room_id": room_id},
        )
        if cursor.rowcount == 0:
            raise LabkitError(
                f"room {room_id!r} is not in {db_path}",
                "see labkit.metadata.read_rooms() for the rooms there",
            )
        row = connection.execute(
            f"SELECT {', '.join(COLUMNS)} FROM {names.ROOMS_TABLE} WHERE room_id = ?", (room_id,)
        ).fetchone()
    return dict(row)
