-- What each reader chooses (the preferences page, or the sign-up form under an article):
-- comma-separated schedule names and section slugs, sorted; NULL = everything, including
-- schedules and sections added later.
ALTER TABLE subscribers ADD COLUMN schedules TEXT;
ALTER TABLE subscribers ADD COLUMN sections TEXT;

-- An article's categories as its feed or the API gave them (JSON list); `[[sections]]` maps
-- them to sections when a digest is made, so a changed mapping applies to what is new.
ALTER TABLE articles ADD COLUMN categories TEXT NOT NULL DEFAULT '[]';

-- A digest for readers who chose some sections: one rendering per distinct choice, made with
-- the digest. Edition 0 is the digest row itself (every section: the archive's copy too).
CREATE TABLE digest_editions (
    digest_id   INTEGER NOT NULL REFERENCES digests (id),
    edition     INTEGER NOT NULL,
    sections    TEXT    NOT NULL,
    subject     TEXT    NOT NULL,
    html        TEXT    NOT NULL,
    text        TEXT    NOT NULL,
    preheader   TEXT    NOT NULL DEFAULT '',
    article_ids TEXT    NOT NULL,
    PRIMARY KEY (digest_id, edition),
    UNIQUE (digest_id, sections)
);
ALTER TABLE deliveries ADD COLUMN edition INTEGER NOT NULL DEFAULT 0;

-- Clicks per article per digest per day (`newsletter.click_counts`): counts only, no reader.
CREATE TABLE article_clicks (
    digest_id  INTEGER NOT NULL,
    article_id INTEGER NOT NULL,
    day        INTEGER NOT NULL,   -- days since 1970-01-01 (UTC)
    clicks     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (digest_id, article_id, day)
);
CREATE INDEX article_clicks_day ON article_clicks (day);

-- "This message already clicked this article": a keyed hash of the pair, so a second click
-- is not counted, kept 30 days and then deleted. Nothing here names a reader.
CREATE TABLE click_marks (
    mark TEXT    PRIMARY KEY,
    at   INTEGER NOT NULL
);
CREATE INDEX click_marks_at ON click_marks (at);
