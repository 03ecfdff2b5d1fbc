-- A reader's sections for one schedule, when they differ between schedules (politics daily,
-- culture weekly). Without a row, `subscribers.sections` applies to that schedule.
CREATE TABLE schedule_sections (
    subscriber_id BIGINT  NOT NULL,
    schedule      TEXT    NOT NULL,
    sections      TEXT    NOT NULL,
    PRIMARY KEY (subscriber_id, schedule)
);
