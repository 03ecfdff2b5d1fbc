-- A send that stops itself, and a mailbox provider whose readers wait (issue 19, part 3).
-- Kept equal to migrations/sqlite/0016_send_guard.sql.
--
-- What the guard judges, kept as outcomes and reports are recorded (no count over the
-- ledger): messages refused for good at send time (a 5xx from the relay), every hard
-- bounce (those, and the ones reported later by DSN or webhook), and complaints.
ALTER TABLE digests ADD COLUMN rejected     BIGINT  NOT NULL DEFAULT 0;
ALTER TABLE digests ADD COLUMN hard_bounces BIGINT  NOT NULL DEFAULT 0;
ALTER TABLE digests ADD COLUMN complaints   BIGINT  NOT NULL DEFAULT 0;
-- Why the guard paused the send (`complaints` or `hard_bounces`, NULL otherwise), what it
-- saw (so many of so many delivered, against which limit) and when.
ALTER TABLE digests ADD COLUMN guard_reason    TEXT;
ALTER TABLE digests ADD COLUMN guard_count     BIGINT;
ALTER TABLE digests ADD COLUMN guard_delivered BIGINT;
ALTER TABLE digests ADD COLUMN guard_limit     DOUBLE PRECISION;
ALTER TABLE digests ADD COLUMN guard_at        BIGINT;
-- The counts when an editor last resumed a send the guard had paused: from then on the
-- guard judges only what was delivered after the resume.
ALTER TABLE digests ADD COLUMN guard_base_delivered  BIGINT  NOT NULL DEFAULT 0;
ALTER TABLE digests ADD COLUMN guard_base_hard       BIGINT  NOT NULL DEFAULT 0;
ALTER TABLE digests ADD COLUMN guard_base_complaints BIGINT  NOT NULL DEFAULT 0;

-- A mailbox provider (gmail, microsoft, yahoo, icloud, other) that deferred most of its
-- latest attempts: its rows wait until `until_at`. `level` counts the backoffs in a row
-- (the wait doubles with each); `deferred` of `judged` attempts tripped the latest.
CREATE TABLE provider_backoffs (
    provider TEXT    PRIMARY KEY,
    until_at BIGINT  NOT NULL,
    level    BIGINT  NOT NULL,
    deferred BIGINT  NOT NULL,
    judged   BIGINT  NOT NULL,
    since    BIGINT  NOT NULL
);
