-- A send's report by mailbox provider (issue 18): the messages of each edition that had at
-- least one counted click, per provider (gmail, microsoft, yahoo, icloud, other). Counts
-- only: which message clicked is a keyed hash in click_marks, so nothing here names a
-- reader. Kept equal to migrations/sqlite/0014_send_report.sql.
CREATE TABLE send_clicks (
    digest_id BIGINT  NOT NULL,
    edition   BIGINT  NOT NULL,
    provider  TEXT    NOT NULL,
    readers   BIGINT  NOT NULL DEFAULT 0,
    PRIMARY KEY (digest_id, edition, provider)
);
