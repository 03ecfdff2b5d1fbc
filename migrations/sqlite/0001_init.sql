-- Nashra's store. All times are Unix milliseconds (UTC).

CREATE TABLE subscribers (
    id              INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused: old unsubscribe links stay harmless
    email           TEXT    NOT NULL,
    email_norm      TEXT    NOT NULL UNIQUE,           -- lower-cased: case does not make a new reader
    name            TEXT    NOT NULL DEFAULT '',
    status          TEXT    NOT NULL CHECK (status IN ('pending', 'confirmed', 'unsubscribed', 'bounced')),
    source          TEXT    NOT NULL,                  -- where consent was given: page URL, 'api', 'import'
    created_at      INTEGER NOT NULL,
    consented_at    INTEGER NOT NULL,                  -- the sign-up the current confirm link belongs to
    confirm_sent_at INTEGER,                           -- last confirmation email: resends are rate-limited
    confirmed_at    INTEGER,
    unsubscribed_at INTEGER,
    bounces         INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX subscribers_status ON subscribers (status, id);

CREATE TABLE articles (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,   -- arrival order: the digests' watermark
    dedup_key    TEXT    NOT NULL UNIQUE,             -- 'guid:…' or 'url:…'
    guid         TEXT,
    url          TEXT    NOT NULL,
    title        TEXT    NOT NULL,
    author       TEXT    NOT NULL DEFAULT '',
    summary      TEXT    NOT NULL DEFAULT '',
    content_html TEXT    NOT NULL DEFAULT '',
    image        TEXT    NOT NULL DEFAULT '',
    tags         TEXT    NOT NULL DEFAULT '[]',       -- JSON array of hashtags, without '#'
    published_at INTEGER,
    source       TEXT    NOT NULL,                    -- feed URL or 'api'
    arrived_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
CREATE INDEX articles_url ON articles (url);

-- One row per schedule: when it last fired and which articles its last digest covered.
CREATE TABLE schedule_state (
    name       TEXT    PRIMARY KEY,
    last_slot  INTEGER NOT NULL,        -- the cron slot (ms) most recently handled
    watermark  INTEGER                  -- highest article id already sent; NULL before the first digest
);

-- A digest is one rendered issue and one send.
CREATE TABLE digests (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    schedule    TEXT    NOT NULL,
    kind        TEXT    NOT NULL CHECK (kind IN ('scheduled', 'manual', 'test')),
    slot        INTEGER,                -- cron slot for scheduled digests: a slot fires once
    subject     TEXT    NOT NULL,
    html        TEXT    NOT NULL,       -- with personal slots left as placeholders
    text        TEXT    NOT NULL,
    preheader   TEXT    NOT NULL DEFAULT '',
    article_ids TEXT    NOT NULL,       -- JSON array
    test_to     TEXT,                   -- the one address of a test send
    status      TEXT    NOT NULL CHECK (status IN ('queued', 'sending', 'paused', 'done', 'failed', 'cancelled')),
    total       INTEGER NOT NULL DEFAULT 0,
    error       TEXT,
    created_at  INTEGER NOT NULL,
    started_at  INTEGER,
    finished_at INTEGER,
    UNIQUE (schedule, slot)
);

-- The delivery ledger: one row per (digest, subscriber). The primary key is what makes a
-- second copy impossible; the lease is what makes a crashed worker's rows come back.
CREATE TABLE deliveries (
    id              INTEGER PRIMARY KEY,
    digest_id       INTEGER NOT NULL REFERENCES digests (id),
    subscriber_id   INTEGER NOT NULL,   -- 0 for a test send (the address is digests.test_to)
    state           TEXT    NOT NULL CHECK (state IN ('pending', 'sending', 'sent', 'failed', 'skipped', 'cancelled')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL DEFAULT 0,
    lease_until     INTEGER,
    last_error      TEXT,
    message_id      TEXT,
    sent_at         INTEGER,
    UNIQUE (digest_id, subscriber_id)
);
-- Claiming walks due rows in order; expired leases are found by their own index.
CREATE INDEX deliveries_queue ON deliveries (digest_id, state, next_attempt_at, id);
CREATE INDEX deliveries_leases ON deliveries (state, lease_until);
