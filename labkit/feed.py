"""Put a lesson's readings into Kafka the real way: MQTT, then the bridge, then Kafka.

Lesson 01 walks through this path step by step. The later lessons need the same data path
but want to spend their time on Spark, so this module does it in one call::

    messages = list(simulator.generate(start=start, duration=120, late_fraction=0.02))
    sent = feed.through_bridge(messages)   # MQTT -> bridge -> telemetry.<room>
    sent.before, sent.after                # where this run's readings start and end in Kafka

``before`` and ``after`` are offsets in the JSON shape Spark reads (``startingOffsets`` /
``endingOffsets``), so a lesson reads exactly its own readings, whatever earlier runs left in
the topics.
"""

from __future__ import annotations

import collections
import dataclasses
import time
from typing import Sequence

from labkit import bridge, names, progress, simulator, topics
from labkit import settings as settings_module
from labkit.errors import LabkitError

#: Seconds without a message after which the bridge's queued backlog counts as delivered.
QUIET_S = 1.0


@dataclasses.dataclass(frozen=True)
class Sent:
    """Where a batch of readings landed in Kafka, and what the bridge did with them."""

    before: dict[str, dict[str, int]]  # end offsets of the raw topics before the readings
    after: dict[str, dict[str, int]]  # ... and after them
    produced: int  # valid readings written to telemetry.<room>
    rejected: dict[str, int]  # invalid ones written to telemetry.dlq, by reason
    counters: str  # a one-line summary, for the notebook

    @property
    def count(self) -> int:
        """How many records this run added to the raw topics."""
        return sum(self.after[t][p] - self.before[t][p] for t in self.after for p in self.after[t])


def through_bridge(
    messages: Sequence[simulator.Message],
    room_ids: Sequence[str] | None = None,
    s: settings_module.Settings | None = None,
    timeout: float = 180,
) -> Sent:
    """Publish ``messages`` over MQTT with a bridge running, and wait until Kafka has them all.

    The bridge runs in a thread of this process for the duration of the call only, so nothing
    is left running afterwards. Every message ends up either in its room's topic or in the
    dead-letter topic; the call waits for both counts, and raises if some never arrive.
    """
    s = s or settings_module.get()
    room_ids = list(room_ids or names.room_ids())
    raw_topics = topics.raw_topics(room_ids)
    topics.ensure_topics(topics.lab_topics(room_ids), s=s)
    running, thread = bridge.start_in_background(s, room_count=len(room_ids))
    try:
        # The bridge's MQTT session is persistent: readings published while no bridge ran
        # (by `labkit simulate`, say) were queued for it and arrive first. Let them pass
        # before taking the "before" offsets, so that they are not counted as this run's.
        progress.wait_until(
            lambda: time.monotonic() - running.last_message_at > QUIET_S and _handled(running) == running.received,
            "bridge: forwarding readings queued earlier",
            timeout=timeout,
        )
        produced_before, rejected_before = running.produced, collections.Counter(running.rejected)
        before = topics.end_offsets(raw_topics, s)
        simulator.publish(messages, host=s.mqtt_host, port=s.mqtt_port)

        def this_run() -> int:
            return running.produced - produced_before + sum((running.rejected - rejected_before).values())

        arrived = progress.wait_until(lambda: this_run() >= len(messages), "bridge: writing to Kafka", timeout=timeout)
    finally:
        running.stop()
        thread.join(60)
    if not arrived:
        raise LabkitError(
            f"only {this_run():,} of {len(messages):,} messages reached Kafka in {timeout:.0f} s",
            "check `labkit status`; if the brokers are healthy, run the cell again",
        )
    after = topics.end_offsets(raw_topics, s)
    produced, rejected = running.produced - produced_before, dict(running.rejected - rejected_before)
    reasons = ", ".join(f"{reason} {n}" for reason, n in sorted(rejected.items()))
    summary = f"{len(messages):,} sent, {produced:,} into the room topics, {sum(rejected.values()):,} to the dead-letter topic"
    return Sent(before, after, produced, rejected, summary + (f" ({reasons})" if reasons else ""))


def _handled(running: bridge.Bridge) -> int:
    """Messages the bridge has finished with: written to a room topic or to the dead-letter topic."""
    return running.produced + sum(running.rejected.values())
