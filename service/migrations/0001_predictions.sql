-- The prediction log: one row per /predict request (a batch is one row holding arrays).
CREATE TABLE IF NOT EXISTS predictions (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    request_id    text        NOT NULL,
    model_version text        NOT NULL,
    inputs        jsonb       NOT NULL,
    outputs       jsonb       NOT NULL,
    latency_ms    real        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT predictions_request_id_key UNIQUE (request_id)
);
-- /predictions pages by id (newest first) through the primary key; retention deletes by age.
CREATE INDEX IF NOT EXISTS predictions_created_at_idx ON predictions (created_at);
CREATE INDEX IF NOT EXISTS predictions_model_version_idx ON predictions (model_version, id DESC);
