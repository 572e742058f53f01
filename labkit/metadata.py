"""The room metadata: a small SQLite table that the stream is joined with.

Sensors send only a ``room_id``. The name, floor and type of a room change rarely and belong to
facilities management, not to the sensor, so they live in a *dimension table* (SQLite file
``data/metadata.db``, table ``rooms``). The Spark job reads it and joins it to every window:
a stream-static join.

The table is filled from ``labkit.rooms``, so it always describes the same building as the
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
    """Create (or refresh) the ``rooms`` table with the profiles of ``room_ids(n_rooms)``.

    ``path`` defaults to ``settings.get().metadata_db`` (``data/metadata.db``); the folder is
    created if needed. Pass ``n_rooms`` > 8 when the simulator runs more rooms for a load test,
    so that every room of the stream finds its row in the join. Returns the file's path.
    """
    db_path = _path(path)
    db_path.parent.mkdir(parents=True, exist_ok=True)
    with _connect(db_path) as connection:
        connection.execute(CREATE_TABLE)
        connection.executemany(
            UPSERT_ROOM, [profile_row(p) for p in rooms.profiles(n_rooms)]
        )
    return db_path


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
        raise LabkitError(
            f"no room metadata at {db_path}", "create it with labkit.metadata.init_metadata()"
        )
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
