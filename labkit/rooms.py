"""The eight rooms of the building and what their sensors read.

Each room has a profile (the facts that go into the SQLite dimension table) and a behaviour (a
function that says what its sensors read at a given moment). A reading is a *pure function* of
``(seed, room_id, timestamp)``:

    reading("room_4", datetime(2026, 1, 30, 10, 30, tzinfo=timezone.utc), seed=7)

always returns the same record, whatever was asked before and in whatever order. That is what
makes the lab reproducible: the simulator may publish late, shuffled or duplicated messages, a
test may recompute any of them, and a batch job can rebuild the exact input of a stream.

How randomness stays deterministic
----------------------------------
Instead of a random generator with hidden state, every random number is a hash of
``(seed, room, channel, slot)``. ``draw("people", every=60)`` gives the same number for the whole
minute, so a head count does not flicker every half second; ``wander("temp", period=900)``
glides smoothly between random values set every 15 minutes, like a real room drifting.

Simplifications a learner should know about
-------------------------------------------
* The building clock is UTC and every day is a working day (08:00-18:00); there are no weekends.
* CO2 follows the number of people instantly; a real room takes minutes to fill and to air.
* ``energy_kwh`` is the room's current electrical load, written as the kWh it would use in an
  hour (numerically the same as kW), so readings of different rooms compare directly.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from datetime import datetime, timezone
from typing import Any, Callable

from labkit.errors import LabkitError
from labkit.names import DEFAULT_ROOM_COUNT, room_ids
from labkit.schema import format_timestamp

#: The seed used when none is given. Any integer works; the same one gives the same building.
DEFAULT_SEED = 2026

WORK_START_HOUR = 8
WORK_END_HOUR = 18


@dataclasses.dataclass(frozen=True)
class RoomProfile:
    """The static facts of a room: exactly the columns of the ``rooms`` metadata table."""

    room_id: str
    room_name: str
    floor: int
    room_type: str
    area_m2: float
    capacity: int


PROFILES: tuple[RoomProfile, ...] = (
    RoomProfile("room_1", "Server Room", 0, "server_room", 40.0, 2),
    RoomProfile("room_2", "Conference Room", 2, "conference_room", 60.0, 16),
    RoomProfile("room_3", "Storage Closet", 0, "storage", 12.0, 1),
    RoomProfile("room_4", "Open Office", 1, "open_office", 150.0, 12),
    RoomProfile("room_5", "Kitchen", 1, "kitchen", 35.0, 10),
    RoomProfile("room_6", "Lab/Workshop", 0, "lab", 80.0, 8),
    RoomProfile("room_7", "Break Room", 2, "break_room", 30.0, 8),
    RoomProfile("room_8", "Executive Office", 3, "executive_office", 25.0, 4),
)

ROOM_IDS: tuple[str, ...] = tuple(p.room_id for p in PROFILES)


def profile(room_id: str) -> RoomProfile:
    """The profile of ``room_id``; ``room_9`` is a second Server Room, ``room_10`` a second
    Conference Room and so on, named "Server Room 2", "Conference Room 2"."""
    prefix, _, number = room_id.partition("_")
    if prefix != "room" or not number.isdigit() or int(number) < 1:
        raise LabkitError(
            f"unknown room {room_id!r}",
            "room ids are room_1, room_2, ... (see labkit.names.room_ids(n))",
        )
    k = int(number)
    base = PROFILES[(k - 1) % len(PROFILES)]
    copy = (k - 1) // len(PROFILES)
    if copy == 0:
        return base
    return dataclasses.replace(base, room_id=room_id, room_name=f"{base.room_name} {copy + 1}")


def profiles(n: int = DEFAULT_ROOM_COUNT) -> list[RoomProfile]:
    """The profiles of ``room_ids(n)``, in order."""
    return [profile(room_id) for room_id in room_ids(n)]


# --------------------------------------------------------------------------------------------
# Deterministic randomness
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Noise:
    """Random numbers for one room at one moment, computed from hashes (see module docstring)."""

    seed: int
    room_id: str
    t: float  # seconds since 1970-01-01 UTC

    def _uniform(self, channel: str, index: int) -> float:
        key = f"{self.seed}|{self.room_id}|{channel}|{index}".encode()
        digest = hashlib.blake2b(key, digest_size=8).digest()
        return int.from_bytes(digest, "big") / 2.0**64

    def draw(self, channel: str, every: float | None = None) -> float:
        """A number in [0, 1): new for each reading, or fixed for each slot of ``every`` s."""
        index = round(self.t * 1000) if every is None else math.floor(self.t / every)
        return self._uniform(channel, index)

    def wander(self, channel: str, period: float) -> float:
        """A number in [-1, 1] that drifts smoothly, with a new random target every ``period``."""
        position = self.t / period
        knot = math.floor(position)
        before = self._uniform(channel, knot)
        after = self._uniform(channel, knot + 1)
        ease = (1 - math.cos(math.pi * (position - knot))) / 2
        return 2 * (before + (after - before) * ease) - 1


def _daylight(hour: float) -> float:
    """0 at night, rising to 1 at noon: how much sun comes through the windows."""
    return max(0.0, math.sin(math.pi * (hour - 6) / 12))


def _working(hour: float) -> bool:
    return WORK_START_HOUR <= hour < WORK_END_HOUR


# --------------------------------------------------------------------------------------------
# Behaviours: one function per room type, returning raw (unrounded) values
# --------------------------------------------------------------------------------------------
# Each returns temperature, humidity, co2, light, occupancy, energy, aqi and motion_chance (how
# likely the motion sensor fires in one half-second reading while someone is in the room).


def _server_room(n: _Noise, hour: float) -> dict[str, float]:
    """Cool, dry and power-hungry. The specification marks it as always "occupied": its presence sensor
    counts the warm, humming racks as one person, and the fans keep the motion sensor busy.
    A technician drops by now and then during working hours."""
    technician = _working(hour) and n.draw("technician", every=600) < 0.15
    occupancy = 2 if technician else 1
    return dict(
        temperature=19.0 + 0.6 * n.wander("temp", 900) + 0.2 * n.wander("temp_fast", 60),
        humidity=35.0 + 4.0 * n.wander("humidity", 1800),
        co2=430 + 30 * occupancy + 10 * n.wander("co2", 600),
        light=450 + 30 * n.draw("light") if technician else 0,
        occupancy=occupancy,
        energy=2.3 + 0.2 * n.wander("load", 600) + (0.1 if technician else 0.0),
        aqi=90 + 6 * n.wander("aqi", 1200),
        motion_chance=0.9,
    )


def _conference_room(n: _Noise, hour: float) -> dict[str, float]:
    """Empty, then suddenly full: most working hours hold one meeting of 30-55 minutes with
    4-14 people, and the room warms up and gets humid as the meeting goes on."""
    has_meeting = _working(hour) and n.draw("meeting", every=3600) < 0.6
    start_minute = 5 * math.floor(3 * n.draw("meeting_start", every=3600))  # :00, :05 or :10
    length_minutes = 30 + 5 * math.floor(6 * n.draw("meeting_length", every=3600))
    minute = (n.t % 3600) / 60
    in_meeting = has_meeting and start_minute <= minute < start_minute + length_minutes
    attendees = 4 + math.floor(11 * n.draw("attendees", every=3600))
    if in_meeting:
        stepped_out = math.floor(3 * n.draw("stepped_out", every=60))
        occupancy = max(1, attendees - stepped_out)
        heat = min(1.0, (minute - start_minute) / 20) * attendees / 14
    else:
        occupancy = 0
        heat = 0.0
    return dict(
        temperature=20.5 + 2.5 * heat + 0.4 * n.wander("temp", 1800),
        humidity=42.0 + 12.0 * heat + 3.0 * n.wander("humidity", 1800),
        co2=430 + 55 * occupancy + 15 * n.wander("co2", 600),
        light=480 + 40 * n.draw("light") if in_meeting else 120 * _daylight(hour),
        occupancy=occupancy,
        energy=0.2 + (0.9 + 0.03 * occupancy if in_meeting else 0.0) + 0.05 * n.wander("load", 600),
        aqi=25 + 1.5 * occupancy + 5 * n.wander("aqi", 1200),
        motion_chance=0.85,
    )


def _storage(n: _Noise, hour: float) -> dict[str, float]:
    """No window, no lamp left on, nobody inside: the calmest signal of the building."""
    return dict(
        temperature=17.0 + 0.15 * n.wander("temp", 3600),
        humidity=48.0 + 1.0 * n.wander("humidity", 3600),
        co2=420 + 8 * n.wander("co2", 3600),
        light=0,
        occupancy=0,
        energy=0.02 + 0.005 * n.wander("load", 3600),
        aqi=32 + 3 * n.wander("aqi", 3600),
        motion_chance=0.0,
    )


def _open_office(n: _Noise, hour: float) -> dict[str, float]:
    """Five to eight people all working day, a few early birds and stragglers around it; the
    heating runs from 07:00 to 19:00."""
    if _working(hour):
        occupancy = 5 + math.floor(4 * n.draw("people", every=120))
    elif 7 <= hour < WORK_START_HOUR or WORK_END_HOUR <= hour < 20:
        occupancy = math.floor(3 * n.draw("people", every=120))
    else:
        occupancy = 0
    heating = 7 <= hour < 19
    sun = _daylight(hour)
    return dict(
        temperature=(21.5 if heating else 19.5) + 0.05 * occupancy + 0.5 * n.wander("temp", 1800),
        humidity=44.0 + 0.6 * occupancy + 3.0 * n.wander("humidity", 1800),
        co2=430 + 45 * occupancy + 20 * n.wander("co2", 600),
        light=450 + 150 * sun + 20 * n.draw("light") if occupancy else 40 * sun,
        occupancy=occupancy,
        energy=0.3 + 0.15 * occupancy + (0.6 if heating else 0.0) + 0.05 * n.wander("load", 600),
        aqi=30 + occupancy + 5 * n.wander("aqi", 1200),
        motion_chance=0.85,
    )


def _kitchen(n: _Noise, hour: float) -> dict[str, float]:
    """Busy at breakfast, lunch and the afternoon coffee. While someone cooks (five-minute
    bursts) the kettle, oven and dishwasher push up heat, steam and the power draw."""
    people_draw = n.draw("people", every=60)
    if 7.5 <= hour < 9:
        occupancy = math.floor(4 * people_draw)  # 0-3
    elif 12 <= hour < 13.5:
        occupancy = 3 + math.floor(6 * people_draw)  # 3-8
    elif 15 <= hour < 15.5:
        occupancy = 1 + math.floor(3 * people_draw)  # 1-3
    elif _working(hour):
        occupancy = 1 if people_draw < 0.25 else 0
    else:
        occupancy = 0
    cooking = occupancy > 0 and n.draw("cooking", every=300) < 0.5
    sun = _daylight(hour)
    return dict(
        temperature=21.0 + (3.0 + n.draw("cook_heat", every=300) if cooking else 0.0) + 0.4 * n.wander("temp", 1800),
        humidity=45.0
        + (18.0 + 8.0 * n.draw("steam", every=300) if cooking else 0.0)
        + 3.0 * n.wander("humidity", 1800),
        co2=430 + 50 * occupancy + 15 * n.wander("co2", 600),
        light=400 + 100 * sun if occupancy else 60 * sun,
        occupancy=occupancy,
        energy=0.35 + 0.05 * occupancy + (2.0 + 1.5 * n.draw("appliances", every=300) if cooking else 0.0),
        aqi=30 + (35 + 20 * n.draw("fumes", every=300) if cooking else 0.0) + 4 * n.wander("aqi", 1200),
        motion_chance=0.85,
    )


def _lab(n: _Noise, hour: float) -> dict[str, float]:
    """Everything moves: drafts from the roller door, machines switching on and off, and
    soldering, cutting or painting sessions that send the air quality index into the unhealthy
    range (above 150). Even at rest the dust keeps it moderate."""
    occupancy = math.floor(7 * n.draw("people", every=300)) if _working(hour) else 0
    activity = occupancy > 0 and n.draw("activity", every=900) < 0.5
    return dict(
        temperature=20.5 + 2.5 * n.wander("temp", 600) + 1.0 * n.wander("temp_fast", 45) + (2.0 if activity else 0.0),
        humidity=38.0 + 15.0 * n.wander("humidity", 900) + 5.0 * n.wander("humidity_fast", 60),
        co2=450 + 70 * occupancy + (150 if activity else 0) + 40 * n.wander("co2", 300),
        light=600 + 400 * n.draw("bench_lamps", every=30) if occupancy else 30 * _daylight(hour),
        occupancy=occupancy,
        energy=0.4 + 0.1 * occupancy + (2.5 + 2.5 * n.draw("machines", every=60) if activity else 0.0),
        aqi=70 + 25 * n.wander("dust", 1200) + (90 + 60 * n.draw("fumes", every=60) if activity else 0.0),
        motion_chance=0.85,
    )


def _break_room(n: _Noise, hour: float) -> dict[str, float]:
    """Rarely more than a couple of people; the lighting changes all the time (a dimmer people
    play with, sun and clouds through a big window) while the temperature barely moves."""
    people_draw = n.draw("people", every=90)
    if not _working(hour) or people_draw < 0.55:
        occupancy = 0
    elif people_draw < 0.8:
        occupancy = 1
    elif people_draw < 0.93:
        occupancy = 2
    else:
        occupancy = 3
    window = 250 * _daylight(hour) * (0.5 + 0.5 * n.wander("clouds", 600))
    return dict(
        temperature=22.0 + 0.25 * n.wander("temp", 3600),
        humidity=45.0 + 0.3 * occupancy + 2.0 * n.wander("humidity", 3600),
        co2=420 + 50 * occupancy + 10 * n.wander("co2", 600),
        light=(150 + 350 * n.draw("dimmer", every=90) if occupancy else 0) + window,
        occupancy=occupancy,
        energy=0.25 + 0.1 * occupancy + 0.03 * n.wander("load", 600),
        aqi=28 + 4 * n.wander("aqi", 1200),
        motion_chance=0.85,
    )


def _executive_office(n: _Noise, hour: float) -> dict[str, float]:
    """One person, at the desk most of 09:00-17:00, in a room whose climate control holds the
    temperature within a few tenths of a degree."""
    present = 9 <= hour < 17 and n.draw("present", every=900) < 0.8
    occupancy = 1 if present else 0
    return dict(
        temperature=21.5 + 0.15 * n.wander("temp", 3600),
        humidity=45.0 + 1.0 * n.wander("humidity", 3600),
        co2=420 + 90 * occupancy + 8 * n.wander("co2", 600),
        light=480 + 10 * n.draw("light") if present else 80 * _daylight(hour),
        occupancy=occupancy,
        energy=0.25 + 0.35 * occupancy + 0.02 * n.wander("load", 600),
        aqi=18 + 3 * n.wander("aqi", 1200),
        motion_chance=0.8,
    )


_BEHAVIOURS: dict[str, Callable[[_Noise, float], dict[str, float]]] = {
    "server_room": _server_room,
    "conference_room": _conference_room,
    "storage": _storage,
    "open_office": _open_office,
    "kitchen": _kitchen,
    "lab": _lab,
    "break_room": _break_room,
    "executive_office": _executive_office,
}


def _clamp(value: float, low: float, high: float) -> float:
    return min(high, max(low, value))


def reading(room_id: str, at: datetime, seed: int = DEFAULT_SEED) -> dict[str, Any]:
    """The raw record (see ``labkit.schema``) that ``room_id``'s sensors send at moment ``at``.

    ``at`` must be timezone-aware; it is cut to whole milliseconds first, so
    ``reading(r, parse_timestamp(record["timestamp"]), seed)`` rebuilds ``record`` exactly.
    """
    room = profile(room_id)
    stamp = format_timestamp(at)  # also refuses naive datetimes
    at_ms = at.astimezone(timezone.utc).replace(microsecond=at.microsecond // 1000 * 1000)
    t = at_ms.timestamp()
    hour = (t % 86_400) / 3600
    noise = _Noise(seed, room_id, t)
    values = _BEHAVIOURS[room.room_type](noise, hour)

    occupancy = int(values["occupancy"])
    motion = occupancy > 0 and noise.draw("motion") < values["motion_chance"]
    return {
        "room_id": room_id,
        "timestamp": stamp,
        "temperature": round(values["temperature"], 2),
        "humidity": round(_clamp(values["humidity"], 0.0, 100.0), 2),
        "co2_ppm": round(max(0.0, values["co2"])),
        "light_lux": round(max(0.0, values["light"])),
        "occupancy_count": occupancy,
        "motion_detected": motion,
        "energy_kwh": round(max(0.0, values["energy"]), 3),
        "air_quality_index": round(_clamp(values["aqi"], 0, 500)),
    }
