-- Where each request came from: `live` (a user's), or what X-Modelship-Source named (smoke, loadcheck, bench,
-- shadow). A column with a constant default is metadata-only on PostgreSQL 11 and later: no table rewrite, and the
-- ACCESS EXCLUSIVE lock is held only for the catalog update, so a populated table keeps taking writes.
-- The lock waits at most 5 s behind a long transaction (retried by the log's recovery), never queueing writes.
SET LOCAL lock_timeout = '5s';
ALTER TABLE predictions ADD COLUMN IF NOT EXISTS source text NOT NULL DEFAULT 'live';
