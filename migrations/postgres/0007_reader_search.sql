-- Reader search by any part of an address or a name (issue 15, item 18): `gmail`,
-- `@alhal.net`, `smith@`, `Smith`, «سارة». Trigram GIN indexes (pg_trgm, shipped with
-- PostgreSQL; a trusted extension since 13, so a user with CREATE on the database may add
-- it) serve `LIKE` on the address and `ILIKE` on the name. SQLite's counterpart is
-- migrations/sqlite/0009_reader_search.sql (an FTS5 trigram index).
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX subscribers_search_email ON subscribers USING gin (email_norm gin_trgm_ops);
CREATE INDEX subscribers_search_name ON subscribers USING gin (name gin_trgm_ops);
