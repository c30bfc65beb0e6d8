-- The challenger's answers (docs/shadow.md): one row per shadowed request, keyed by the primary's request_id.
-- A table of its own, not a second row in predictions: request_id is UNIQUE there and the writer's
-- ON CONFLICT DO NOTHING (what makes a spool replay idempotent) would silently keep only one of the two.
-- A new, empty table: created without touching predictions, so a populated log keeps taking writes.
CREATE TABLE IF NOT EXISTS shadow_predictions (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    request_id    text        NOT NULL,
    model_version text        NOT NULL,
    inputs        jsonb       NOT NULL,
    outputs       jsonb       NOT NULL,
    latency_ms    real        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    source        text        NOT NULL DEFAULT 'shadow',
    CONSTRAINT shadow_predictions_request_id_key UNIQUE (request_id)
);
CREATE INDEX IF NOT EXISTS shadow_predictions_created_at_idx ON shadow_predictions (created_at);
