-- DMARC aggregate reports (issue 19, RFC 7489 appendix C): what the inbox providers say about
-- the mail sent with our domain in its From. One row per report, unique on its reporting
-- organisation and its own id, so a report read twice is stored once; one row per record of
-- the report. No reader is named: a record is a sending IP, a count and the results.
-- Kept equal to migrations/postgres/0013_dmarc.sql.
CREATE TABLE dmarc_reports (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    org         TEXT    NOT NULL,  -- report_metadata/org_name: google.com, Yahoo, Outlook.com…
    report_id   TEXT    NOT NULL,
    domain      TEXT    NOT NULL,  -- policy_published/domain
    begin_at    INTEGER NOT NULL,  -- date_range, ms since the epoch
    end_at      INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    records     INTEGER NOT NULL,
    UNIQUE (org, report_id)
);

CREATE TABLE dmarc_records (
    report       INTEGER NOT NULL REFERENCES dmarc_reports (id) ON DELETE CASCADE,
    day          TEXT    NOT NULL,  -- YYYY-MM-DD (UTC) of the report's date_range begin
    org          TEXT    NOT NULL,  -- the report's, so the page groups without a join
    source_ip    TEXT    NOT NULL,
    messages     INTEGER NOT NULL,  -- row/count
    disposition  TEXT    NOT NULL,  -- none | quarantine | reject (policy_evaluated)
    dkim_aligned INTEGER NOT NULL,  -- 1: policy_evaluated/dkim = pass
    spf_aligned  INTEGER NOT NULL,  -- 1: policy_evaluated/spf = pass
    header_from  TEXT    NOT NULL
);
CREATE INDEX dmarc_records_day ON dmarc_records (day);
