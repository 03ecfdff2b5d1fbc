-- Identity of articles, unforgeable digest slots, bounce accounting that a stopped send
-- cannot skew, a durable queue for confirmation emails, and a heartbeat row for /health.

-- An article is the same article when it has the same guid in the same feed, or the same
-- canonical URL from any source (scheme and host lower-cased, no fragment, no tracking
-- parameters, no trailing slash).
ALTER TABLE articles ADD COLUMN canonical_url TEXT NOT NULL DEFAULT '';
ALTER TABLE articles ADD COLUMN image_alt TEXT NOT NULL DEFAULT '';
UPDATE articles SET canonical_url = url;
CREATE INDEX articles_canonical ON articles (canonical_url);
CREATE INDEX articles_source_guid ON articles (source, guid);

-- Personal slots in a digest are marked with a random key made at render time, so no text
-- from an article can contain a slot. '' = the fixed markers of digests made before this.
ALTER TABLE digests ADD COLUMN slot_key TEXT NOT NULL DEFAULT '';
-- The public web copy: the digest without the email's personal footer.
ALTER TABLE digests ADD COLUMN web_html TEXT NOT NULL DEFAULT '';

-- A 5xx is a fact about the reader only once its send finished normally: a send stopped
-- because the relay rejected everything leaves `permanent` failures uncounted.
ALTER TABLE deliveries ADD COLUMN permanent INTEGER NOT NULL DEFAULT 0;
ALTER TABLE deliveries ADD COLUMN bounce_counted INTEGER NOT NULL DEFAULT 0;

-- One-off mail (the double opt-in confirmation), retried with backoff like digests and
-- surviving a restart. The message is rendered when it is sent.
CREATE TABLE mail_queue (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    kind            TEXT    NOT NULL CHECK (kind IN ('confirm')),
    subscriber_id   INTEGER NOT NULL,
    mailbox         TEXT    NOT NULL,   -- the inbox (plus-tag and case removed): limits are per inbox
    issued          INTEGER NOT NULL,   -- the consent the confirm link belongs to
    state           TEXT    NOT NULL CHECK (state IN ('pending', 'sending', 'sent', 'failed', 'skipped')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL DEFAULT 0,
    lease_until     INTEGER,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    sent_at         INTEGER
);
CREATE INDEX mail_queue_due ON mail_queue (state, next_attempt_at);
CREATE INDEX mail_queue_mailbox ON mail_queue (mailbox, created_at);

-- /health writes here: a store that takes no writes is not healthy.
CREATE TABLE heartbeat (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    at INTEGER NOT NULL
);

-- Data rewrites that need Rust (IDNA, URL canonicalisation) run once at start, after the
-- migrations, and are recorded here.
CREATE TABLE data_upgrades (
    name TEXT PRIMARY KEY,
    at   INTEGER NOT NULL
);
