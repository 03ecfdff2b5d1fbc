-- The console: accounts, their sessions, API tokens and the audit log; readers' consent
-- history; what editors decide about coming digests. Kept equal to
-- migrations/postgres/0002_console.sql.

CREATE TABLE admins (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    email         TEXT    NOT NULL UNIQUE,      -- lower-cased
    role          TEXT    NOT NULL CHECK (role IN ('viewer', 'editor', 'owner')),
    password_hash TEXT    NOT NULL,             -- argon2id, PHC string
    totp_secret   TEXT,                         -- base32; NULL: no second factor
    failed_logins INTEGER NOT NULL DEFAULT 0,   -- since the last good login
    locked_until  INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL
);

-- A signed-in browser. The cookie holds a random value; only its SHA-256 is kept here.
CREATE TABLE admin_sessions (
    id_hash      TEXT    PRIMARY KEY,
    admin_id     INTEGER NOT NULL REFERENCES admins (id) ON DELETE CASCADE,
    stage        TEXT    NOT NULL CHECK (stage IN ('totp', 'full')), -- 'totp': password given, code awaited
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL
);
CREATE INDEX admin_sessions_admin ON admin_sessions (admin_id);

CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT    NOT NULL,
    role         TEXT    NOT NULL CHECK (role IN ('viewer', 'editor', 'owner')),
    token_hash   TEXT    NOT NULL UNIQUE,       -- SHA-256; the token is shown once
    hint         TEXT    NOT NULL,              -- its first characters, to tell tokens apart
    created_by   TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at   INTEGER
);

-- Who did what, when: logins, sends, pauses, erasures, imports, accounts and tokens.
CREATE TABLE audit_log (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    at     INTEGER NOT NULL,
    actor  TEXT    NOT NULL,                    -- an account's address, 'token:NAME', 'admin_token', 'cli'
    action TEXT    NOT NULL,
    target TEXT    NOT NULL DEFAULT '',         -- never a reader's address: their id
    detail TEXT    NOT NULL DEFAULT '',
    client TEXT    NOT NULL DEFAULT ''
);

-- A reader's consent history. Erasure deletes it with the reader.
CREATE TABLE consent_events (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    subscriber_id INTEGER NOT NULL,
    at            INTEGER NOT NULL,
    event         TEXT    NOT NULL CHECK (event IN ('signup', 'confirm', 'unsubscribe', 'bounce', 'import')),
    source        TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX consent_events_subscriber ON consent_events (subscriber_id, id);
-- The dashboard's chart reads sign-ups and departures by time, not the imports.
CREATE INDEX consent_events_at ON consent_events (event, at);
INSERT INTO consent_events (subscriber_id, at, event, source)
    SELECT id, consented_at, CASE WHEN source LIKE 'import%' THEN 'import' ELSE 'signup' END, source FROM subscribers;
INSERT INTO consent_events (subscriber_id, at, event, source)
    SELECT id, confirmed_at, 'confirm', '' FROM subscribers WHERE confirmed_at IS NOT NULL AND source NOT LIKE 'import%';
INSERT INTO consent_events (subscriber_id, at, event, source)
    SELECT id, unsubscribed_at, 'unsubscribe', '' FROM subscribers WHERE unsubscribed_at IS NOT NULL;

-- Articles an editor took out of a schedule's coming digest.
CREATE TABLE excluded_articles (
    schedule    TEXT    NOT NULL,
    article_id  INTEGER NOT NULL,
    excluded_by TEXT    NOT NULL,
    at          INTEGER NOT NULL,
    PRIMARY KEY (schedule, article_id)
);

-- A paused schedule lets its slots pass without a digest.
ALTER TABLE schedule_state ADD COLUMN paused INTEGER NOT NULL DEFAULT 0;
-- Permanent failures of a finished send, counted when it finishes.
ALTER TABLE digests ADD COLUMN bounced INTEGER NOT NULL DEFAULT 0;
-- Who started a manual or test send.
ALTER TABLE digests ADD COLUMN created_by TEXT;
-- Readers are filtered by where they signed up (a prefix: page, embed, api, import).
CREATE INDEX subscribers_source ON subscribers (source);
