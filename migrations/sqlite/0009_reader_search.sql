-- Reader search by any part of an address or a name (issue 15, item 18): `gmail`,
-- `@alhal.net`, `smith@`, `Smith`, «سارة». An FTS5 index of every three-character run
-- (the `trigram` tokenizer, case folded) of each reader's address and name, over the
-- subscribers table itself (external content: nothing stored twice). Triggers keep it in
-- step with every insert, change and erasure; `secure-delete` takes an erased reader's
-- entries out of the index at once rather than at a later merge. PostgreSQL's counterpart is
-- migrations/postgres/0007_reader_search.sql (trigram GIN indexes).
CREATE VIRTUAL TABLE subscriber_search USING fts5 (
    email_norm, name,
    content = 'subscribers', content_rowid = 'id', tokenize = 'trigram'
);
INSERT INTO subscriber_search (subscriber_search, rank) VALUES ('secure-delete', 1);
INSERT INTO subscriber_search (subscriber_search) VALUES ('rebuild');

CREATE TRIGGER subscriber_search_insert AFTER INSERT ON subscribers BEGIN
    INSERT INTO subscriber_search (rowid, email_norm, name) VALUES (new.id, new.email_norm, new.name);
END;
CREATE TRIGGER subscriber_search_delete AFTER DELETE ON subscribers BEGIN
    INSERT INTO subscriber_search (subscriber_search, rowid, email_norm, name)
    VALUES ('delete', old.id, old.email_norm, old.name);
END;
CREATE TRIGGER subscriber_search_update AFTER UPDATE OF email_norm, name ON subscribers BEGIN
    INSERT INTO subscriber_search (subscriber_search, rowid, email_norm, name)
    VALUES ('delete', old.id, old.email_norm, old.name);
    INSERT INTO subscriber_search (rowid, email_norm, name) VALUES (new.id, new.email_norm, new.name);
END;
