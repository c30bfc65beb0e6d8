-- Ground truth sent to POST /feedback: one label per instance of a logged prediction (a single instance is index 0,
-- a batch's instance i is index i). A new, empty table: creating it takes no lock on `predictions`, so it is online
-- safe. No foreign key to predictions: a label whose prediction is unknown is filtered out by the INSERT itself
-- (service/db.py INSERT_LABELS), so a spooled label can never fail the group commit it rides in; retention deletes
-- a prediction's labels with it (service/retention.py).
CREATE TABLE IF NOT EXISTS labels (
    request_id text        NOT NULL,
    index      integer     NOT NULL CHECK (index >= 0),
    label      jsonb       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (request_id, index)
);
