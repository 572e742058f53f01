"""The SQLite rooms table: created from labkit.rooms, idempotent, and editable for a lesson."""

import sqlite3

import pytest

from labkit import metadata, rooms, settings
from labkit.errors import LabkitError

EXPECTED_COLUMNS = {
    # name: (declared type, part of the primary key)
    "room_id": ("TEXT", True),
    "room_name": ("TEXT", False),
    "floor": ("INTEGER", False),
    "room_type": ("TEXT", False),
    "area_m2": ("REAL", False),
    "capacity": ("INTEGER", False),
}


def all_rows(path):
    """The table as raw SQLite sees it, independent of read_rooms."""
    with sqlite3.connect(path) as connection:
        rows = connection.execute("SELECT * FROM rooms ORDER BY room_id").fetchall()
    connection.close()
    return rows


def test_init_creates_the_folder_and_the_table(tmp_path):
    path = tmp_path / "not" / "yet" / "metadata.db"
    returned = metadata.init_metadata(path)
    assert returned == path and path.exists()
    with sqlite3.connect(path) as connection:
        info = connection.execute("PRAGMA table_info(rooms)").fetchall()
    connection.close()
    columns = {row[1]: (row[2], bool(row[5])) for row in info}
    assert columns == EXPECTED_COLUMNS


def test_rows_describe_the_eight_rooms(tmp_path):
    path = metadata.init_metadata(tmp_path / "metadata.db")
    rows = metadata.read_rooms(path)
    assert [row["room_id"] for row in rows] == list(rooms.ROOM_IDS)
    for row, profile in zip(rows, rooms.PROFILES):
        assert row == {
            "room_id": profile.room_id,
            "room_name": profile.room_name,
            "floor": profile.floor,
            "room_type": profile.room_type,
            "area_m2": profile.area_m2,
            "capacity": profile.capacity,
        }
    assert rows[1]["room_name"] == "Conference Room"
    assert isinstance(rows[0]["floor"], int) and isinstance(rows[0]["area_m2"], float)


def test_init_twice_leaves_the_same_rows(tmp_path):
    path = tmp_path / "metadata.db"
    metadata.init_metadata(path)
    first = all_rows(path)
    metadata.init_metadata(path)
    assert all_rows(path) == first
    assert len(first) == 8


def test_init_restores_rooms_that_were_edited(tmp_path):
    path = metadata.init_metadata(tmp_path / "metadata.db")
    original = all_rows(path)
    metadata.update_room(path, "room_3", room_name="Archive", capacity=3)
    assert all_rows(path) != original
    metadata.init_metadata(path)
    assert all_rows(path) == original


def test_more_rooms_for_a_load_test_in_natural_order(tmp_path):
    path = metadata.init_metadata(tmp_path / "metadata.db", n_rooms=12)
    ids = [row["room_id"] for row in metadata.read_rooms(path)]
    assert ids == [f"room_{k}" for k in range(1, 13)]  # room_10 after room_9, not after room_1
    names = [row["room_name"] for row in metadata.read_rooms(path)]
    assert len(set(names)) == 12


def test_update_changes_one_room_only(tmp_path):
    path = metadata.init_metadata(tmp_path / "metadata.db")
    before = {row["room_id"]: row for row in metadata.read_rooms(path)}
    updated = metadata.update_room(path, "room_2", room_name="Boardroom", floor=5)
    assert updated["room_name"] == "Boardroom" and updated["floor"] == 5
    assert updated["room_type"] == before["room_2"]["room_type"]
    after = {row["room_id"]: row for row in metadata.read_rooms(path)}
    assert after["room_2"] == updated
    assert {k: v for k, v in after.items() if k != "room_2"} == {k: v for k, v in before.items() if k != "room_2"}


@pytest.mark.parametrize("changes", [{"colour": "red"}, {"capacity": 3, "owner": "x"}, {}])
def test_update_refuses_what_it_cannot_change(tmp_path, changes):
    path = metadata.init_metadata(tmp_path / "metadata.db")
    before = all_rows(path)
    with pytest.raises(LabkitError):
        metadata.update_room(path, "room_2", **changes)
    assert all_rows(path) == before


def test_update_of_a_missing_room_fails_and_changes_nothing(tmp_path):
    path = metadata.init_metadata(tmp_path / "metadata.db")
    before = all_rows(path)
    with pytest.raises(LabkitError, match="room_42"):
        metadata.update_room(path, "room_42", room_name="Ghost")
    assert all_rows(path) == before


def test_reading_a_missing_database_says_what_to_do(tmp_path):
    path = tmp_path / "missing.db"
    with pytest.raises(LabkitError) as caught:
        metadata.read_rooms(path)
    assert "init_metadata" in caught.value.next_step
    assert not path.exists()  # no empty file left behind


def test_default_path_comes_from_settings(tmp_path, monkeypatch):
    target = tmp_path / "data" / "rooms.db"
    monkeypatch.setenv("LABKIT_METADATA_DB", str(target))
    settings.get.cache_clear()
    try:
        assert metadata.init_metadata() == target
        assert len(metadata.read_rooms()) == 8
        metadata.update_room(None, "room_8", room_name="CEO Office")
        assert metadata.read_rooms(target)[7]["room_name"] == "CEO Office"
    finally:
        settings.get.cache_clear()


def test_thresholds_cover_every_room_type_and_can_be_tuned(tmp_path):
    path = metadata.init_metadata(tmp_path / "metadata.db")
    with sqlite3.connect(path) as connection:
        by_type = {
            row[0]: row[1:]
            for row in connection.execute("SELECT room_type, max_temperature, max_co2_ppm FROM thresholds")
        }
    connection.close()
    assert set(by_type) == {p.room_type for p in rooms.PROFILES}
    assert by_type["server_room"] == (24.0, 1000)  # the example: a server room above 24 °C
    tuned = metadata.update_threshold(path, "server_room", max_temperature=23.0)
    assert tuned["max_temperature"] == 23.0
    assert metadata.read_thresholds(path)["kitchen"]["max_temperature"] == by_type["kitchen"][0]
    with pytest.raises(LabkitError):
        metadata.update_threshold(path, "server_room", colour="red")
    with pytest.raises(LabkitError):
        metadata.update_threshold(path, "attic", max_temperature=30.0)
