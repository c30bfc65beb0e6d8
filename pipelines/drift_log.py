"""Read the prediction log back for drift: each logged value binned in SQL, by the manifest's own edges.

PostgreSQL does the counting, so a report over a million logged instances moves a few dozen rows to Python, not
the log. `width_bucket(v, edges)` is the binning rule of model/drift.py (`numpy.searchsorted(edges, v,
side="right")`), so the service's counters, the Prometheus rules and this report put a value in the same bin.

Rows come in the shapes service/core.py `record_of` writes: a single instance (`inputs` the object, `outputs`
`{"prediction": v}`) and a batch of any protocol (`inputs.features` names the columns of `inputs.instances`,
`outputs.columns.prediction` the answers; a classifier's hold class names). A row in another shape (written by an
earlier service) is counted as skipped, not guessed at.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import psycopg

from model.drift import DriftReference
from pipelines import logdb
from pipelines.errors import ConfigError

_SQL = """
WITH logged AS (
    SELECT inputs, outputs,
           CASE
               WHEN jsonb_typeof(inputs -> 'instances') = 'array' AND jsonb_typeof(inputs -> 'features') = 'array'
                    AND jsonb_typeof(outputs -> 'columns' -> 'prediction') = 'array' THEN 'batch'
               WHEN inputs ?& %(names)s::text[] AND outputs ? 'prediction' THEN 'single'
           END AS shape
    FROM predictions
    WHERE model_version = %(version)s AND source = ANY(%(sources)s::text[]) AND created_at > now() - %(window)s
),
edges AS (
    SELECT key AS name, ARRAY(SELECT e::float8 FROM jsonb_array_elements_text(value) AS e) AS edges
    FROM jsonb_each(%(edges)s::jsonb)
),
inputs AS (
    SELECT f.name, l.inputs -> f.name AS value
    FROM logged l CROSS JOIN unnest(%(names)s::text[]) AS f(name)
    WHERE l.shape = 'single'
    UNION ALL
    SELECT f.name, i.instance -> (f.position::int - 1)
    FROM logged l
    CROSS JOIN LATERAL jsonb_array_elements_text(l.inputs -> 'features') WITH ORDINALITY AS f(name, position)
    CROSS JOIN LATERAL jsonb_array_elements(l.inputs -> 'instances') AS i(instance)
    WHERE l.shape = 'batch'
),
outputs AS (
    SELECT l.outputs -> 'prediction' AS value FROM logged l WHERE l.shape = 'single'
    UNION ALL
    SELECT p.value
    FROM logged l CROSS JOIN LATERAL jsonb_array_elements(l.outputs -> 'columns' -> 'prediction') AS p(value)
    WHERE l.shape = 'batch'
)
SELECT 'feature' AS part, i.name, width_bucket(i.value::float8, e.edges) AS bin, count(*) AS n
FROM inputs i JOIN edges e USING (name)
WHERE jsonb_typeof(i.value) = 'number'
GROUP BY i.name, bin
UNION ALL
SELECT 'output', '', {output_bin}, count(*) FROM outputs o WHERE {output_valid} GROUP BY 3
UNION ALL
SELECT 'instances', '', 0, count(*) FROM outputs
UNION ALL
SELECT 'skipped', '', 0, count(*) FROM logged WHERE shape IS NULL
"""
# A regression's output is binned like a feature; a classifier's by its class's position in the manifest's list.
_NUMERIC_OUTPUT = ("width_bucket(o.value::float8, %(output_edges)s::float8[])", "jsonb_typeof(o.value) = 'number'")
_CLASS_OUTPUT = (
    "array_position(%(classes)s::text[], o.value #>> '{}') - 1",
    "array_position(%(classes)s::text[], o.value #>> '{}') IS NOT NULL",
)


@dataclass(frozen=True)
class LiveCounts:
    """The logged live values of one model version in a window, counted per bin of the reference."""

    features: dict[str, list[int]]
    output: list[int]
    instances: int  # logged instances in the window (a batch of 100 is 100)
    skipped: int  # rows in a shape this code does not read


def count_bins(
    conn: psycopg.Connection[Any], reference: DriftReference, version: str, window: timedelta, sources: list[str]
) -> LiveCounts:
    """Count VERSION's logged values from SOURCES over the last WINDOW in REFERENCE's bins."""
    output_bin, output_valid = _CLASS_OUTPUT if reference.output.classes is not None else _NUMERIC_OUTPUT
    sql = _SQL.replace("{output_bin}", output_bin).replace("{output_valid}", output_valid)
    params = {
        "names": list(reference.features),
        "version": version,
        "sources": sources,
        "window": window,
        "edges": json.dumps({name: list(part.edges) for name, part in reference.features.items()}),
        "output_edges": list(reference.output.edges),
        "classes": list(reference.output.classes or ()),
    }
    features = {name: [0] * part.bins for name, part in reference.features.items()}
    output = [0] * reference.output.bins
    totals: dict[str, int] = {}
    for part, name, bin_, n in conn.execute(sql, params).fetchall():
        if part == "feature":
            features[name][bin_] = n
        elif part == "output":
            output[bin_] = n
        else:
            totals[part] = n
    return LiveCounts(features, output, totals.get("instances", 0), totals.get("skipped", 0))


def newest_version(conn: psycopg.Connection[Any], sources: list[str]) -> str | None:
    """The model version of the newest logged row from SOURCES (None when there is none)."""
    row = conn.execute(
        "SELECT model_version FROM predictions WHERE source = ANY(%s::text[]) ORDER BY id DESC LIMIT 1", [sources]
    ).fetchone()
    return str(row[0]) if row else None


def has_rows(conn: psycopg.Connection[Any], version: str, sources: list[str]) -> bool:
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM predictions WHERE model_version = %s AND source = ANY(%s::text[]))",
        [version, sources],
    ).fetchone()
    return bool(row and row[0])


def logged_versions(conn: psycopg.Connection[Any], sources: list[str], limit: int = 5) -> list[str]:
    """The model versions with rows from SOURCES, newest first (for an error message that names the choices)."""
    rows = conn.execute(
        "SELECT model_version FROM predictions WHERE source = ANY(%s::text[]) "
        "GROUP BY model_version ORDER BY max(id) DESC LIMIT %s",
        [sources, limit],
    ).fetchall()
    return [str(r[0]) for r in rows]


def pick_version(conn: psycopg.Connection[Any], asked: str | None, sources: list[str]) -> str:
    """`--model-version`, else the version of the newest logged row from SOURCES; ConfigError when it has none."""
    version = asked or newest_version(conn, sources)
    if version is not None and has_rows(conn, version, sources):
        return version
    which = "+".join(sources)
    known = logged_versions(conn, sources)
    choices = f"versions with {which} rows: {', '.join(known)}" if known else f"the log has no {which} rows at all"
    what = f"model version {asked} has no {which} rows in the prediction log" if asked else "nothing to compare"
    raise ConfigError(f"{what}; {choices} (--source reads other traffic)")


@contextmanager
def connection(db: str | psycopg.Connection[Any]) -> Iterator[psycopg.Connection[Any]]:
    """A connection given, or one to the URL given (`logdb.connect`: one line when it cannot be had)."""
    if not isinstance(db, str):
        yield db
        return
    with logdb.connect(db) as conn:
        yield conn
