"""The baselines' log tables (the service migrates its own `predictions`); created by the harness."""

SEED_TABLE = "bench_seed_predictions"
SEED_DDL = """
CREATE TABLE IF NOT EXISTS bench_seed_predictions (
    id SERIAL PRIMARY KEY, size DOUBLE PRECISION, bedrooms INTEGER, age DOUBLE PRECISION,
    predicted_price DOUBLE PRECISION, created_at TIMESTAMPTZ DEFAULT now()
)"""

NAIVE_TABLE = "bench_naive_predictions"
NAIVE_DDL = """
CREATE TABLE IF NOT EXISTS bench_naive_predictions (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, request_id text NOT NULL UNIQUE,
    model_version text NOT NULL, inputs jsonb NOT NULL, outputs jsonb NOT NULL,
    latency_ms real NOT NULL, created_at timestamptz NOT NULL DEFAULT now()
)"""
