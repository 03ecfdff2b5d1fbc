-- Several relays and warm-up (issue 19). Kept equal to migrations/postgres/0015_relays_warmup.sql.
-- The relay that took each message (its configured name; NULL for the outbox and for rows
-- sent before this change).
ALTER TABLE deliveries ADD COLUMN relay TEXT;

-- A warm-up's allowance: messages to each mailbox provider taken from each day's cap, shared
-- by every process (each reserves a few at a time). `day` is the newsroom's calendar day
-- (YYYY-MM-DD); the first day recorded is day 1 of the warm-up.
CREATE TABLE warmup_days (
    day      TEXT   NOT NULL,
    provider TEXT   NOT NULL,
    taken    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (day, provider)
);
