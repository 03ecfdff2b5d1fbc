-- The news clock and the reader's clock (issue 17): breaking-news alerts within each
-- reader's budget, and digests at each reader's local hour.

-- The reader's IANA time zone (from the browser at sign-up, or the preferences page);
-- NULL = the newsroom's. Whether they take alerts (0/1, off unless they ask), and how many a
-- day at most (NULL = `alerts.max_per_day`).
ALTER TABLE subscribers ADD COLUMN timezone TEXT;
ALTER TABLE subscribers ADD COLUMN alerts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE subscribers ADD COLUMN alerts_per_day INTEGER;
CREATE INDEX subscribers_alerts ON subscribers (id) WHERE alerts = 1 AND status = 'confirmed';
CREATE INDEX subscribers_timezone ON subscribers (timezone);

-- Pushed with "urgent": true (or in `alerts.categories`): a candidate for an alert.
ALTER TABLE articles ADD COLUMN urgent INTEGER NOT NULL DEFAULT 0;

-- A local-hour send's wave: the reader's zone when the digest was made (or when they moved)
-- and the instant their slot falls there; NULL for every other row. The row's
-- next_attempt_at starts there, so the claim's index (deliveries_due) passes over rows that
-- are not due.
ALTER TABLE deliveries ADD COLUMN wave TEXT;
ALTER TABLE deliveries ADD COLUMN not_before INTEGER;

-- An urgent article's alert: waiting for an editor, approved (the undo window runs until
-- send_at), sent (digest_id is its send: the ledger does the rest) or cancelled. One per
-- article.
CREATE TABLE alerts (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    article_id INTEGER NOT NULL UNIQUE,
    status     TEXT    NOT NULL CHECK (status IN ('waiting', 'approved', 'sent', 'cancelled')),
    created_at INTEGER NOT NULL,
    decided_at INTEGER,
    decided_by TEXT,
    send_at    INTEGER,
    digest_id  INTEGER
);
CREATE INDEX alerts_status ON alerts (status, send_at);
