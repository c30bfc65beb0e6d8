"""What each arm of a canary did, read from the prediction log: live requests of one model version since a moment.

Only `source = 'live'` rows count: smoke tests, load checks and benchmarks name themselves (X-Modelship-Source)
and must not vote. PostgreSQL counts the requests and takes the latency percentiles over every row of the window;
the answers and inputs are read from the newest `max_rows` rows (a sample bounded in memory, the same bound for
both arms). Rows come in the shapes service/core.py `record_of` writes: a single instance (`inputs` the object,
`outputs` `{"prediction": v}`) or a batch (`inputs.features` + `inputs.instances`, `outputs.columns.prediction`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg

from service.sources import LIVE

_SUMMARY = """
SELECT count(*),
       percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms),
       percentile_cont(0.99) WITHIN GROUP (ORDER BY latency_ms)
FROM predictions WHERE model_version = %(version)s AND source = %(source)s AND created_at >= %(since)s
"""
_ROWS = """
SELECT inputs, outputs FROM predictions
WHERE model_version = %(version)s AND source = %(source)s AND created_at >= %(since)s
ORDER BY id DESC LIMIT %(limit)s
"""

Answer = float | str


@dataclass(frozen=True)
class ArmLog:
    """One arm's live traffic in a window: request count, latency percentiles (ms), answers and inputs."""

    version: str
    requests: int
    p95_ms: float | None  # None: no request in the window
    p99_ms: float | None
    answers: list[Answer] = field(default_factory=list)
    inputs: dict[str, list[float]] = field(default_factory=dict)


def now(conn: psycopg.Connection[Any]) -> datetime:
    """The database's clock: windows are compared with `created_at`, so both come from the same side."""
    row = conn.execute("SELECT now()").fetchone()
    assert row is not None  # SELECT now() always returns a row
    return row[0]  # type: ignore[no-any-return]


def live_requests(conn: psycopg.Connection[Any], version: str, since: datetime) -> int:
    row = conn.execute(
        "SELECT count(*) FROM predictions WHERE model_version = %s AND source = %s AND created_at >= %s",
        [version, LIVE, since],
    ).fetchone()
    return int(row[0]) if row else 0


def read_arm(conn: psycopg.Connection[Any], version: str, since: datetime, max_rows: int = 5000) -> ArmLog:
    """VERSION's live requests since SINCE."""
    params = {"version": version, "source": LIVE, "since": since, "limit": max_rows}
    with conn.transaction():  # one snapshot: the count and the rows read are the same requests
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        row = conn.execute(_SUMMARY, params).fetchone()
        logged = conn.execute(_ROWS, params).fetchall()
    count, p95, p99 = (int(row[0]), row[1], row[2]) if row else (0, None, None)
    answers: list[Answer] = []
    inputs: dict[str, list[float]] = {}
    for logged_in, logged_out in logged:
        _add_row(logged_in, logged_out, answers, inputs)
    return ArmLog(version, count, _ms(p95), _ms(p99), answers, inputs)


def _ms(value: Any) -> float | None:
    return None if value is None else round(float(value), 3)


def _add_row(logged_in: Any, logged_out: Any, answers: list[Answer], inputs: dict[str, list[float]]) -> None:
    """Append one row's answers and numeric inputs; a row in neither shape adds nothing (it is not guessed at)."""
    if isinstance(logged_in, dict) and isinstance(logged_in.get("instances"), list):
        names = logged_in.get("features") or []
        rows = [dict(zip(names, instance, strict=False)) for instance in logged_in["instances"]]
        predicted = (logged_out.get("columns") or {}).get("prediction") or []
    elif isinstance(logged_in, dict) and isinstance(logged_out, dict) and "prediction" in logged_out:
        rows, predicted = [logged_in], [logged_out["prediction"]]
    else:
        return
    answers.extend(p for p in predicted if isinstance(p, (int, float, str)) and not isinstance(p, bool))
    for instance in rows:
        for name, value in instance.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                inputs.setdefault(name, []).append(float(value))
