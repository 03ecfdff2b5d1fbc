//! The console's accounts, their sessions, API tokens and the audit log.
//!
//! Passwords arrive here already hashed (argon2id, in `crate::console::auth`), session ids
//! and API tokens as SHA-256 hashes: the store never holds a secret a reader of the database
//! could use.

use anyhow::Context;

use super::{Admin, ApiToken, AuditEntry, AuditRecord, Role, SessionAdmin, SessionStage};

/// A session's last use is written at most this often (every request reads it), or a
/// quarter of the idle limit if that is shorter.
const TOUCH_EVERY_MS: i64 = 60_000;

for_each_engine! {
    impl Db {
        /// Adds an account; `None` when the address already has one.
        pub(crate) async fn add_admin(
            &self,
            email: &str,
            role: Role,
            password_hash: &str,
            now: i64,
        ) -> anyhow::Result<Option<i64>> {
            let mut tx = self.begin_write().await?;
            let id: Option<i64> = sqlx::query_scalar(
                "INSERT INTO admins (email, role, password_hash, created_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (email) DO NOTHING RETURNING id",
            )
            .bind(email)
            .bind(role.as_str())
            .bind(password_hash)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await
            .context("failed to add the account")?;
            self.commit(tx).await?;
            Ok(id)
        }

        pub(crate) async fn admin_by_email(&self, email: &str) -> anyhow::Result<Option<Admin>> {
            Ok(sqlx::query_as::<_, Admin>("SELECT * FROM admins WHERE email = $1")
                .bind(email)
                .fetch_optional(&self.pool)
                .await?)
        }

        pub(crate) async fn admin(&self, id: i64) -> anyhow::Result<Option<Admin>> {
            Ok(sqlx::query_as::<_, Admin>("SELECT * FROM admins WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?)
        }

        pub(crate) async fn admins(&self) -> anyhow::Result<Vec<Admin>> {
            Ok(sqlx::query_as::<_, Admin>("SELECT * FROM admins ORDER BY id")
                .fetch_all(&self.pool)
                .await?)
        }

        /// Counts a wrong password (or code); the account locks for `lock_ms` at `max`
        /// failures in a row. Returns whether it is locked now.
        pub(crate) async fn login_failed(
            &self,
            id: i64,
            max: i64,
            lock_ms: i64,
            now: i64,
        ) -> anyhow::Result<bool> {
            let mut tx = self.begin_write().await?;
            let locked: i64 = sqlx::query_scalar(
                "UPDATE admins SET
                     locked_until = CASE WHEN failed_logins + 1 >= $2 THEN $3 ELSE locked_until END,
                     failed_logins = CASE WHEN failed_logins + 1 >= $2 THEN 0 ELSE failed_logins + 1 END
                 WHERE id = $1 RETURNING locked_until",
            )
            .bind(id)
            .bind(max)
            .bind(now + lock_ms)
            .fetch_one(&mut *tx)
            .await?;
            self.commit(tx).await?;
            Ok(locked > now)
        }

        pub(crate) async fn login_succeeded(&self, id: i64) -> anyhow::Result<()> {
            let mut tx = self.begin_write().await?;
            sqlx::query("UPDATE admins SET failed_logins = 0 WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            self.commit(tx).await
        }

        /// Changes an account's role or removes it (`None`), refusing to leave the console
        /// without an owner. Its sessions end either way: the next request signs in again.
        /// A removed account's API tokens are revoked with it (at `now`): a script keeps no
        /// door its maker no longer has. Returns false when the change would remove the last
        /// owner.
        pub(crate) async fn set_admin_role(&self, id: i64, role: Option<Role>, now: i64) -> anyhow::Result<bool> {
            let mut tx = self.begin_write().await?;
            Db::lock(&mut tx, "admins").await?;
            let owners_left: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM admins WHERE role = 'owner' AND id <> $1",
            )
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
            if owners_left == 0 && role != Some(Role::Owner) {
                return Ok(false);
            }
            sqlx::query("DELETE FROM admin_sessions WHERE admin_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            match role {
                Some(r) => {
                    sqlx::query("UPDATE admins SET role = $1 WHERE id = $2")
                        .bind(r.as_str())
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
                None => {
                    // Tokens name their maker by address (`created_by`, the actor's name).
                    sqlx::query(
                        "UPDATE api_tokens SET revoked_at = $1
                         WHERE revoked_at IS NULL
                           AND created_by = (SELECT email FROM admins WHERE id = $2)",
                    )
                    .bind(now)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query("DELETE FROM admins WHERE id = $1")
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            self.commit(tx).await?;
            Ok(true)
        }

        /// A new password ends every session of the account and lifts a lock-out.
        pub(crate) async fn set_password(&self, id: i64, password_hash: &str) -> anyhow::Result<()> {
            let mut tx = self.begin_write().await?;
            sqlx::query("UPDATE admins SET password_hash = $1, failed_logins = 0, locked_until = 0 WHERE id = $2")
                .bind(password_hash)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM admin_sessions WHERE admin_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            self.commit(tx).await
        }

        /// Sets (or clears) the second factor; `step` is the step of the code that proved
        /// the new secret, so that code cannot open a session afterwards.
        pub(crate) async fn set_totp(&self, id: i64, secret: Option<&str>, step: Option<i64>) -> anyhow::Result<()> {
            let mut tx = self.begin_write().await?;
            sqlx::query("UPDATE admins SET totp_secret = $1, totp_last_step = $2 WHERE id = $3")
                .bind(secret)
                .bind(step)
                .bind(id)
                .execute(&mut *tx)
                .await?;
            self.commit(tx).await
        }

        /// Records `step` as the account's last used code; false when that step (or a later
        /// one) was used already: a code opens one door, once.
        pub(crate) async fn use_totp_step(&self, id: i64, step: i64) -> anyhow::Result<bool> {
            let mut tx = self.begin_write().await?;
            let taken: Option<i64> = sqlx::query_scalar(
                "UPDATE admins SET totp_last_step = $2
                 WHERE id = $1 AND (totp_last_step IS NULL OR totp_last_step < $2) RETURNING id",
            )
            .bind(id)
            .bind(step)
            .fetch_optional(&mut *tx)
            .await?;
            self.commit(tx).await?;
            Ok(taken.is_some())
        }

        /// Takes a lost second factor away (an owner or the command line): the account
        /// signs in with its password alone until its owner sets a new one, and its
        /// sessions end (a half-open one waited for the old factor).
        pub(crate) async fn reset_totp(&self, id: i64) -> anyhow::Result<()> {
            let mut tx = self.begin_write().await?;
            sqlx::query("UPDATE admins SET totp_secret = NULL, totp_last_step = NULL WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM admin_sessions WHERE admin_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            self.commit(tx).await
        }

        // ------------------------------------------------------------ sessions

        /// Starts a session; `replaces` (the browser's previous session, if any) ends in the
        /// same transaction, so a session id is never carried across a login.
        pub(crate) async fn start_session(
            &self,
            id_hash: &str,
            admin: i64,
            stage: SessionStage,
            replaces: Option<&str>,
            now: i64,
            absolute_ms: i64,
        ) -> anyhow::Result<()> {
            let mut tx = self.begin_write().await?;
            if let Some(old) = replaces {
                sqlx::query("DELETE FROM admin_sessions WHERE id_hash = $1")
                    .bind(old)
                    .execute(&mut *tx)
                    .await?;
            }
            // Expired sessions go as new ones start: the table holds live sessions only.
            sqlx::query("DELETE FROM admin_sessions WHERE created_at < $1")
                .bind(now - absolute_ms)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO admin_sessions (id_hash, admin_id, stage, created_at, last_seen_at)
                 VALUES ($1, $2, $3, $4, $4)",
            )
            .bind(id_hash)
            .bind(admin)
            .bind(stage.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await
            .context("failed to start a session")?;
            self.commit(tx).await
        }

        /// The live session `id_hash` names: used within `idle_ms` and started within
        /// `absolute_ms`. Its last use is recorded (at most once a minute, so a session may
        /// outlive its idle limit by that much).
        pub(crate) async fn session(
            &self,
            id_hash: &str,
            now: i64,
            idle_ms: i64,
            absolute_ms: i64,
        ) -> anyhow::Result<Option<SessionAdmin>> {
            let s = sqlx::query_as::<_, SessionAdmin>(
                "SELECT s.admin_id, a.email, a.role, s.stage,
                        CAST(CASE WHEN a.totp_secret IS NULL THEN 0 ELSE 1 END AS BIGINT) AS has_totp,
                        s.created_at, s.last_seen_at
                 FROM admin_sessions s JOIN admins a ON a.id = s.admin_id
                 WHERE s.id_hash = $1 AND s.created_at > $2 AND s.last_seen_at > $3",
            )
            .bind(id_hash)
            .bind(now - absolute_ms)
            .bind(now - idle_ms)
            .fetch_optional(&self.pool)
            .await?;
            if let Some(s) = &s
                && now - s.last_seen_at > TOUCH_EVERY_MS.min(idle_ms / 4)
            {
                let mut tx = self.begin_write().await?;
                sqlx::query("UPDATE admin_sessions SET last_seen_at = $1 WHERE id_hash = $2")
                    .bind(now)
                    .bind(id_hash)
                    .execute(&mut *tx)
                    .await?;
                self.commit(tx).await?;
            }
            Ok(s)
        }

        pub(crate) async fn end_session(&self, id_hash: &str) -> anyhow::Result<()> {
            let mut tx = self.begin_write().await?;
            sqlx::query("DELETE FROM admin_sessions WHERE id_hash = $1")
                .bind(id_hash)
                .execute(&mut *tx)
                .await?;
            self.commit(tx).await
        }

        /// Logout everywhere: returns how many sessions ended.
        pub(crate) async fn end_sessions_of(&self, admin: i64) -> anyhow::Result<u64> {
            let mut tx = self.begin_write().await?;
            let n = sqlx::query("DELETE FROM admin_sessions WHERE admin_id = $1")
                .bind(admin)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            self.commit(tx).await?;
            Ok(n)
        }

        // ------------------------------------------------------------ API tokens

        pub(crate) async fn add_api_token(
            &self,
            name: &str,
            role: Role,
            token_hash: &str,
            hint: &str,
            created_by: &str,
            now: i64,
        ) -> anyhow::Result<i64> {
            let mut tx = self.begin_write().await?;
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO api_tokens (name, role, token_hash, hint, created_by, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            )
            .bind(name)
            .bind(role.as_str())
            .bind(token_hash)
            .bind(hint)
            .bind(created_by)
            .bind(now)
            .fetch_one(&mut *tx)
            .await
            .context("failed to store the token")?;
            self.commit(tx).await?;
            Ok(id)
        }

        /// The live (not revoked) token with this hash, made by an account that still
        /// exists (or by `cli`/`admin_token`, names without an `@`): a token whose maker was
        /// removed before removals revoked tokens is refused too. Its last use is recorded
        /// (at most once a minute).
        pub(crate) async fn api_token(&self, token_hash: &str, now: i64) -> anyhow::Result<Option<ApiToken>> {
            let t = sqlx::query_as::<_, ApiToken>(
                "SELECT t.id, t.name, t.role, t.hint, t.created_by, t.created_at, t.last_used_at, t.revoked_at
                 FROM api_tokens t
                 WHERE t.token_hash = $1 AND t.revoked_at IS NULL
                   AND (t.created_by NOT LIKE '%@%'
                        OR EXISTS (SELECT 1 FROM admins a WHERE a.email = t.created_by))",
            )
            .bind(token_hash)
            .fetch_optional(&self.pool)
            .await?;
            if let Some(t) = &t
                && now - t.last_used_at.unwrap_or(0) > TOUCH_EVERY_MS
            {
                let mut tx = self.begin_write().await?;
                sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2")
                    .bind(now)
                    .bind(t.id)
                    .execute(&mut *tx)
                    .await?;
                self.commit(tx).await?;
            }
            Ok(t)
        }

        pub(crate) async fn api_tokens(&self) -> anyhow::Result<Vec<ApiToken>> {
            Ok(sqlx::query_as::<_, ApiToken>(
                "SELECT id, name, role, hint, created_by, created_at, last_used_at, revoked_at
                 FROM api_tokens ORDER BY revoked_at IS NOT NULL, id DESC LIMIT 500",
            )
            .fetch_all(&self.pool)
            .await?)
        }

        /// Returns the revoked token's name, or `None` if there was no live one.
        pub(crate) async fn revoke_api_token(&self, id: i64, now: i64) -> anyhow::Result<Option<String>> {
            let mut tx = self.begin_write().await?;
            let name: Option<String> = sqlx::query_scalar(
                "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL RETURNING name",
            )
            .bind(now)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
            self.commit(tx).await?;
            Ok(name)
        }

        // ------------------------------------------------------------ audit log

        pub(crate) async fn audit(&self, r: &AuditRecord, now: i64) -> anyhow::Result<()> {
            let mut tx = self.begin_write().await?;
            sqlx::query(
                "INSERT INTO audit_log (at, actor, action, target, detail, client) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(now)
            .bind(&r.actor)
            .bind(r.action)
            .bind(&r.target)
            .bind(&r.detail)
            .bind(&r.client)
            .execute(&mut *tx)
            .await
            .context("failed to write the audit log")?;
            self.commit(tx).await
        }

        /// Entries before `before` (an id), newest first, optionally of one action.
        pub(crate) async fn audit_log(
            &self,
            before: Option<i64>,
            action: Option<&str>,
            limit: i64,
        ) -> anyhow::Result<Vec<AuditEntry>> {
            Ok(sqlx::query_as::<_, AuditEntry>(
                "SELECT id, at, actor, action, target, detail, client FROM audit_log
                 WHERE ($1 IS NULL OR id < $1) AND ($2 IS NULL OR action = $2)
                 ORDER BY id DESC LIMIT $3",
            )
            .bind(before)
            .bind(action)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?)
        }
    }
}
