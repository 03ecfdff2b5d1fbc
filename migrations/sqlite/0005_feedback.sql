-- What comes back after the relay's "250": bounces (DSNs, provider events), complaints (ARF,
-- feedback loops) and unsubscribes by mail. One row per event, recorded once however often
-- the same message or webhook is read (dedup_key), and tied to its ledger row when known.
CREATE TABLE feedback_events (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    dedup_key     TEXT    NOT NULL UNIQUE,
    kind          TEXT    NOT NULL CHECK (kind IN ('hard', 'soft', 'complaint', 'unsubscribe', 'delivered')),
    source        TEXT    NOT NULL,   -- imap, file, ses, postmark, mailgun, sendgrid
    delivery_id   INTEGER,            -- the ledger row, when the event names it
    digest_id     INTEGER,
    subscriber_id INTEGER,
    status        TEXT    NOT NULL DEFAULT '',   -- enhanced status code (5.1.1) when given
    detail        TEXT    NOT NULL DEFAULT '',   -- diagnostic, addresses redacted
    at            INTEGER NOT NULL
);
CREATE INDEX feedback_events_digest ON feedback_events (digest_id, kind);
CREATE INDEX feedback_events_subscriber ON feedback_events (subscriber_id, id);

-- Addresses that complained: a new sign-up for one of them needs its confirmation like any
-- other, and only that confirmation lifts the entry; imports cannot. Kept as a hash of the
-- normalised address, so erasure leaves nothing readable behind.
CREATE TABLE suppressions (
    email_hash TEXT    PRIMARY KEY,
    reason     TEXT    NOT NULL,
    at         INTEGER NOT NULL
);

-- Soft bounces on digests in a row, and the last digest that soft-bounced.
ALTER TABLE subscribers ADD COLUMN soft_bounces INTEGER NOT NULL DEFAULT 0;
ALTER TABLE subscribers ADD COLUMN soft_bounce_digest INTEGER NOT NULL DEFAULT 0;

-- Provider events and complaints name a message by its Message-ID.
CREATE INDEX deliveries_message_id ON deliveries (message_id) WHERE message_id IS NOT NULL;
