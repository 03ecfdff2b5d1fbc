-- The welcome message (issue 18): one to each reader who confirms, through the mail queue.

-- When the reader's one welcome was queued; NULL = never. Set in the transaction that
-- confirms them, so a second click on the link, or leaving and coming back, finds it set
-- (the queue's own rows are forgotten after 30 days; this is not).
ALTER TABLE subscribers ADD COLUMN welcomed_at BIGINT;

-- The queue takes welcomes beside confirmations.
ALTER TABLE mail_queue DROP CONSTRAINT mail_queue_kind_check;
ALTER TABLE mail_queue ADD CONSTRAINT mail_queue_kind_check CHECK (kind IN ('confirm', 'welcome'));
