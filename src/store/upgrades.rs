//! One-time rewrites of what earlier versions stored, and the heartbeat `/health` writes.

use anyhow::Context;

use super::clock::now_ms;
use crate::domain::SubscriberEmail;

for_each_engine! {
    impl Db {
        /// Rewrites what earlier versions stored in a form this one no longer produces, once
        /// per database: addresses to their A-label form (`user@مثال.إختبار` is now
        /// `user@xn--mgbh0fb.xn--kgbechtv`, so a new sign-up finds the old row and an erasure
        /// by either spelling works), and articles' canonical URLs (copied raw by the
        /// migration).
        pub(crate) async fn upgrade_data(
            &self,
            canonical_url: fn(&str) -> String,
        ) -> anyhow::Result<()> {
            if self.begin_upgrade("addresses-a-label").await? {
                let (mut after, mut changed, mut clashes) = (0i64, 0u64, 0u64);
                loop {
                    let page = self.subscribers_after(after, 5_000).await?;
                    let Some(last) = page.last() else { break };
                    after = last.id;
                    for row in &page {
                        let Ok(e) = SubscriberEmail::parse(&row.email) else {
                            continue;
                        };
                        if e.as_str() == row.email {
                            continue;
                        }
                        let r = sqlx::query(
                            "UPDATE subscribers SET email = $1, email_norm = $2 WHERE id = $3",
                        )
                        .bind(e.as_str())
                        .bind(e.normalized())
                        .bind(row.id)
                        .execute(&self.pool)
                        .await;
                        match r {
                            Ok(_) => changed += 1,
                            Err(err)
                                if err
                                    .as_database_error()
                                    .is_some_and(|d| d.is_unique_violation()) =>
                            {
                                // Both spellings were signed up before: two rows stay.
                                clashes += 1
                            }
                            Err(err) => return Err(err.into()),
                        }
                    }
                }
                if changed + clashes > 0 {
                    tracing::info!(changed, clashes, "addresses rewritten to their A-label form");
                }
                self.finish_upgrade("addresses-a-label").await?;
            }
            if self.begin_upgrade("articles-canonical-url").await? {
                let mut after = 0i64;
                loop {
                    let page: Vec<(i64, String)> = sqlx::query_as(
                        "SELECT id, url FROM articles WHERE id > $1 ORDER BY id LIMIT 5000",
                    )
                    .bind(after)
                    .fetch_all(&self.pool)
                    .await?;
                    let Some(last) = page.last() else { break };
                    after = last.0;
                    let mut tx = self.begin_write().await?;
                    for (id, url) in &page {
                        sqlx::query("UPDATE articles SET canonical_url = $1 WHERE id = $2")
                            .bind(canonical_url(url))
                            .bind(id)
                            .execute(&mut *tx)
                            .await?;
                    }
                    self.commit(tx).await?;
                }
                self.finish_upgrade("articles-canonical-url").await?;
            }
            Ok(())
        }

        async fn begin_upgrade(&self, name: &str) -> anyhow::Result<bool> {
            let done: Option<i64> =
                sqlx::query_scalar("SELECT at FROM data_upgrades WHERE name = $1")
                    .bind(name)
                    .fetch_optional(&self.pool)
                    .await?;
            Ok(done.is_none())
        }

        async fn finish_upgrade(&self, name: &str) -> anyhow::Result<()> {
            sqlx::query(
                "INSERT INTO data_upgrades (name, at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
            )
            .bind(name)
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
            Ok(())
        }

        /// A write that must commit within 5 s: `/health`'s proof that the store takes writes.
        pub(crate) async fn write_heartbeat(&self) -> anyhow::Result<()> {
            let write = sqlx::query(
                "INSERT INTO heartbeat (id, at) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET at = excluded.at",
            )
            .bind(now_ms())
            .execute(&self.pool);
            tokio::time::timeout(std::time::Duration::from_secs(5), write)
                .await
                .context("a write did not finish within 5 s")?
                .context("the database refuses writes")?;
            Ok(())
        }
    }
}
