-- The editor's desk (issue 18): the next digest of a schedule as an editor shaped it, and
-- subject tests decided by readers' clicks. Kept equal to migrations/postgres/0009_editors_desk.sql.

-- What an editor set for a schedule's next digest; the digest that carries it deletes the row
-- in the transaction that makes it. `version` is the time of the last change (ms, always
-- increasing), so a digest rendered from an older version is rendered again.
CREATE TABLE next_digests (
    schedule      TEXT   PRIMARY KEY,
    subject       TEXT,             -- a subject template like `[[schedules]] subject`; NULL: the schedule's
    note_html     TEXT,             -- «كلمة التحرير», sanitised HTML (paragraphs, bold, links)
    lead          INTEGER,           -- the lead story's article id
    article_order TEXT,             -- JSON array of article ids, in the editor's order
    subject_test  TEXT,             -- JSON: a subject test for the next digest
    version       INTEGER NOT NULL,
    updated_by    TEXT   NOT NULL,
    updated_at    INTEGER NOT NULL
);

-- A subject test: the subjects (JSON array), when the winner is chosen, the winner (index)
-- and why. Each sample reader's ledger row names the subject it carries (`variant`); the rest
-- of the audience waits (next_attempt_at far ahead) until the winner is chosen.
ALTER TABLE digests ADD COLUMN test_subjects TEXT;
ALTER TABLE digests ADD COLUMN test_decide_at INTEGER;
ALTER TABLE digests ADD COLUMN test_winner INTEGER;
ALTER TABLE digests ADD COLUMN test_note TEXT;
ALTER TABLE deliveries ADD COLUMN variant INTEGER;

-- Distinct messages of each subject with a counted click (the scanner rules of /r/). Counts
-- only: nothing here names a reader.
CREATE TABLE subject_clicks (
    digest_id INTEGER NOT NULL,
    variant   INTEGER NOT NULL,
    readers   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (digest_id, variant)
);
