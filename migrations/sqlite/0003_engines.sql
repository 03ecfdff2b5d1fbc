-- What several processes on one database need, kept equal to migrations/postgres/.

-- Per-send counters, kept with every change of a delivery's state, so progress is read
-- without counting a million-row ledger.
ALTER TABLE digests ADD COLUMN sent INTEGER NOT NULL DEFAULT 0;
ALTER TABLE digests ADD COLUMN failed INTEGER NOT NULL DEFAULT 0;
ALTER TABLE digests ADD COLUMN skipped INTEGER NOT NULL DEFAULT 0;
ALTER TABLE digests ADD COLUMN cancelled INTEGER NOT NULL DEFAULT 0;
-- Rows claimed by a worker right now (a count over the claimed rows' index would read every
-- row that passed through it until the next vacuum).
ALTER TABLE digests ADD COLUMN in_flight INTEGER NOT NULL DEFAULT 0;
UPDATE digests SET
    sent = (SELECT COUNT(*) FROM deliveries d WHERE d.digest_id = digests.id AND d.state = 'sent'),
    failed = (SELECT COUNT(*) FROM deliveries d WHERE d.digest_id = digests.id AND d.state = 'failed'),
    skipped = (SELECT COUNT(*) FROM deliveries d WHERE d.digest_id = digests.id AND d.state = 'skipped'),
    cancelled = (SELECT COUNT(*) FROM deliveries d WHERE d.digest_id = digests.id AND d.state = 'cancelled'),
    in_flight = (SELECT COUNT(*) FROM deliveries d WHERE d.digest_id = digests.id AND d.state = 'sending');

-- Indexes over only the rows that are still moving: due rows per send, leased rows, and a
-- reader's open rows (for leaving mid-send). Finished rows leave them.
DROP INDEX deliveries_queue;
DROP INDEX deliveries_leases;
CREATE INDEX deliveries_due ON deliveries (digest_id, next_attempt_at, id) WHERE state = 'pending';
CREATE INDEX deliveries_sending ON deliveries (digest_id, lease_until) WHERE state = 'sending';
CREATE INDEX deliveries_open_by_reader ON deliveries (subscriber_id) WHERE state IN ('pending', 'sending');

-- Confirmation emails are limited through mail_queue now.
ALTER TABLE subscribers DROP COLUMN confirm_sent_at;

-- A feed is polled once per poll_every by whichever process takes its turn.
CREATE TABLE feed_polls (
    url          TEXT    PRIMARY KEY,
    next_poll_at INTEGER NOT NULL
);

-- The deployment-wide sending rate: processes reserve send times from this row.
CREATE TABLE pacing (
    name    TEXT    PRIMARY KEY,
    next_at INTEGER NOT NULL
);
