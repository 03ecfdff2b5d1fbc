-- The welcome message (issue 18): one to each reader who confirms, through the mail queue.

-- When the reader's one welcome was queued; NULL = never. Set in the transaction that
-- confirms them, so a second click on the link, or leaving and coming back, finds it set
-- (the queue's own rows are forgotten after 30 days; this is not).
ALTER TABLE subscribers ADD COLUMN welcomed_at INTEGER;

-- The queue takes welcomes beside confirmations. SQLite cannot widen a CHECK in place: the
-- table is rebuilt (nothing refers to it by foreign key), its ids and AUTOINCREMENT counter
-- kept, its indexes made again.
CREATE TABLE mail_queue_new (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    kind            TEXT    NOT NULL CHECK (kind IN ('confirm', 'welcome')),
    subscriber_id   INTEGER NOT NULL,
    mailbox         TEXT    NOT NULL,   -- the inbox (plus-tag and case removed): limits are per inbox
    issued          INTEGER NOT NULL,   -- the consent the confirm link (or the welcome) belongs to
    state           TEXT    NOT NULL CHECK (state IN ('pending', 'sending', 'sent', 'failed', 'skipped')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL DEFAULT 0,
    lease_until     INTEGER,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    sent_at         INTEGER
);
INSERT INTO mail_queue_new (id, kind, subscriber_id, mailbox, issued, state, attempts,
                            next_attempt_at, lease_until, last_error, created_at, sent_at)
    SELECT id, kind, subscriber_id, mailbox, issued, state, attempts,
           next_attempt_at, lease_until, last_error, created_at, sent_at
    FROM mail_queue;
DELETE FROM sqlite_sequence WHERE name = 'mail_queue_new';
INSERT INTO sqlite_sequence (name, seq)
    SELECT 'mail_queue_new', seq FROM sqlite_sequence WHERE name = 'mail_queue';
DROP TABLE mail_queue;
ALTER TABLE mail_queue_new RENAME TO mail_queue;
CREATE INDEX mail_queue_due ON mail_queue (state, next_attempt_at);
CREATE INDEX mail_queue_mailbox ON mail_queue (mailbox, created_at);
