"""`labkit to-postgres` against a real PostgreSQL, and every Grafana panel's SQL against what it loaded.

PostgreSQL comes from Debian's package (`.ci/run` installs it). Each test module starts its own
cluster in a temporary folder on a free port, as the `postgres` user when run as root (initdb
refuses root), and stops it afterwards: nothing touches a system PostgreSQL.
"""

import glob
import json
import os
import re
import shutil
import subprocess
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import aggregates
import pytest
from conftest import ROOT, free_port

from labkit import names

pytestmark = pytest.mark.services
DASHBOARD_JSON = ROOT / "docker" / "grafana" / "dashboards" / "building.json"


def _as_postgres_user(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@pytest.fixture(scope="module")
def postgres():
    binaries = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not binaries:
        pytest.fail("PostgreSQL is not installed: apt-get install postgresql (.ci/run does)")
    bindir = Path(binaries[-1]).parent
    folder = Path(tempfile.mkdtemp(prefix="labkit-pg-"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    data, port = folder / "data", free_port()
    subprocess.run(
        _as_postgres_user([str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "labkit", "--no-sync"]),
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
    start = [str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(folder / "log"), "-w", "start"]
    subprocess.run(_as_postgres_user(start), check=True, capture_output=True)
    try:
        yield f"host=127.0.0.1 port={port} user=labkit dbname=postgres"
    finally:
        subprocess.run(
            _as_postgres_user([str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
            check=False,
            capture_output=True,
        )
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def loaded(stack, postgres):
    """Real windows (plus repeats, a broken message and an alert) in Kafka, loaded into PostgreSQL."""
    from labkit import topics, warehouse

    room_ids = names.room_ids(8)
    topics.ensure_topics(topics.lab_topics(room_ids) + [names.ALERTS_TOPIC])
    rows = aggregates.windows(room_ids, aggregates.now_aligned(), 40)
    alert = {"room_id": "room_2", "kind": "co2_high", "value": 1234.0, "message": "CO2 above 1000 ppm"}
    broken = (names.downsampled_topic("room_3"), "room_3|x", b"{not json", None)
    aggregates.produce(rows, extra=[(names.ALERTS_TOPIC, "room_2", json.dumps(alert).encode(), None), broken])
    aggregates.produce(rows[:5])  # at least once: the same windows again
    loaded = warehouse.run(postgres, until_caught_up=True, timeout=120)
    return rows, alert, loaded


def _windows_in_postgres(dsn, rows):
    from labkit import schema, warehouse

    room_ids, starts = [r["room_id"] for r in rows], [r["window_start"] for r in rows]
    with warehouse.connect(dsn) as conn:
        found = conn.execute(
            f"SELECT {', '.join(schema.AGGREGATE_COLUMNS)} FROM telemetry_windows "
            "WHERE (room_id, window_start) IN (SELECT * FROM unnest(%s::text[], %s::timestamptz[]))",
            [room_ids, starts],
        ).fetchall()
    return [dict(zip(schema.AGGREGATE_COLUMNS, f)) for f in found]


def test_windows_land_once_each_with_the_values_of_the_reference(postgres, loaded):
    rows, _, counts = loaded
    found = _windows_in_postgres(postgres, rows)
    assert len(found) == len(rows), "each window once, repeats upserted"
    by_key = {(f["room_id"], f["window_start"]): f for f in found}
    for row in rows:
        got = by_key[(row["room_id"], row["window_start"])]
        for column, value in row.items():
            expected = value if isinstance(value, (str, datetime)) else pytest.approx(value)
            assert got[column] == expected, (row["room_id"], row["window_start"], column)
    assert counts["unreadable"] >= 1, "the broken message is reported, not silently dropped"


def test_loading_again_from_the_beginning_changes_nothing(postgres, loaded):
    from labkit import warehouse

    rows, _, _ = loaded
    with warehouse.connect(postgres) as conn:
        conn.execute("DELETE FROM kafka_positions")  # forget where it was: every message comes again
        before = conn.execute("SELECT count(*) FROM telemetry_windows").fetchone()[0]
    warehouse.run(postgres, until_caught_up=True, timeout=120)
    with warehouse.connect(postgres) as conn:
        after = conn.execute("SELECT count(*) FROM telemetry_windows").fetchone()[0]
        alerts = conn.execute("SELECT count(*) FROM telemetry_alerts").fetchone()[0]
    assert after == before
    assert len(_windows_in_postgres(postgres, rows)) == len(rows)
    assert alerts >= 1


def test_the_alert_is_in_postgres(postgres, loaded):
    from labkit import warehouse

    _, alert, _ = loaded
    with warehouse.connect(postgres) as conn:
        details = [d for (d,) in conn.execute("SELECT details FROM telemetry_alerts WHERE room_id = 'room_2'")]
    assert any(d.get("message") == alert["message"] for d in details)


def grafana_sql(sql: str, start: datetime, end: datetime) -> str:
    """Expand the Grafana macros the dashboard uses, as Grafana's PostgreSQL data source does."""
    expanded = re.sub(
        r"\$__timeFilter\(([^)]+)\)",
        lambda m: f"{m.group(1)} BETWEEN '{start.isoformat()}' AND '{end.isoformat()}'",
        sql,
    )
    assert "$__" not in expanded, f"a Grafana macro this test does not know: {expanded}"
    return expanded


def test_every_grafana_panel_query_returns_rows(postgres, loaded):
    from labkit import warehouse

    dashboard = json.loads(DASHBOARD_JSON.read_text())
    end = datetime.now(timezone.utc)
    start = end - timedelta(minutes=15)  # the dashboard's default time range
    queries = [(p["title"], t["rawSql"]) for p in dashboard["panels"] for t in p.get("targets", [])]
    assert len(queries) >= 7
    with warehouse.connect(postgres) as conn:
        for title, sql in queries:
            rows = conn.execute(grafana_sql(sql, start, end)).fetchall()
            assert rows, f"panel {title!r} returns no rows"
            if "count(*)" in sql:
                assert rows[0][0] > 0, f"panel {title!r} counts nothing"


def test_provisioned_datasource_is_the_one_the_panels_use():
    import yaml

    provisioned = yaml.safe_load((ROOT / "docker/grafana/provisioning/datasources/postgres.yaml").read_text())
    uids = {d["uid"] for d in provisioned["datasources"]}
    dashboard = json.loads(DASHBOARD_JSON.read_text())
    used = {t["datasource"]["uid"] for p in dashboard["panels"] for t in p["targets"]}
    assert used <= uids
