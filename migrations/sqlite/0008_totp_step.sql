-- The step (Unix time / 30 s) of the last second-factor code an account used: a code is
-- taken once, and refused for the rest of its window (issue 15, item 5). Kept equal to
-- migrations/postgres/0006_totp_step.sql.
ALTER TABLE admins ADD COLUMN totp_last_step INTEGER;
