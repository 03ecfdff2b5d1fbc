-- One-off sends for later (issue 18): a send planned for a date and time waits as a digest
-- row with status 'queued' (nothing else uses it) until the scheduler starts it, filling the
-- row with the digest rendered then and its audience fixed then. NULL for every other row.

-- When it starts (ms): the newsroom's instant, or with local_time the earliest zone's.
ALTER TABLE digests ADD COLUMN starts_at BIGINT;
-- The editor's subject instead of the schedule's (may hold {{ date }} / {{ date_short }}).
ALTER TABLE digests ADD COLUMN planned_subject TEXT;
-- Each reader at this wall-clock time in their own zone ('YYYY-MM-DDTHH:MM:SS'); NULL: the
-- newsroom's instant for everyone.
ALTER TABLE digests ADD COLUMN local_time TEXT;
-- Why a planned send sent nothing ('nothing_new': no new articles at its time).
ALTER TABLE digests ADD COLUMN reason TEXT;
CREATE INDEX digests_planned ON digests (starts_at) WHERE status = 'queued';
