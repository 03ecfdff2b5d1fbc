//! Articles: one article however it arrives (identity rules below), and which are new for a
//! schedule.

use anyhow::Context;

use super::{Article, ExcludedArticle, NewArticle, clock::now_ms};

for_each_engine! {
    impl Db {

        /// Stores an article, or updates the one it already is, which keeps its arrival order (an
        /// edit never makes it "new" again). Identity: the same guid from the same source (a feed
        /// or the API), else the same canonical URL from any source. An article first seen by URL
        /// adopts the guid it later arrives with, so a later edit of its URL still finds it.
        pub(crate) async fn upsert_article(&self, a: &NewArticle) -> anyhow::Result<(i64, bool)> {
            let now = now_ms();
            let mut tx = self.begin_write().await?;
            // Arrivals of one article from two processes at once must find each other.
            Db::lock(&mut tx, "articles").await?;
            let by_guid: Option<i64> =
                match &a.guid {
                    Some(g) => sqlx::query_scalar(
                        "SELECT id FROM articles WHERE source = $1 AND guid = $2 ORDER BY id LIMIT 1",
                    )
                    .bind(&a.source)
                    .bind(g)
                    .fetch_optional(&mut *tx)
                    .await?,
                    None => None,
                };
            // By URL: the same article from another source, or one that had no guid. Two items
            // of one feed with their own guids stay two even when they share a link.
            let existing = match by_guid {
                Some(id) => Some(id),
                None => {
                    sqlx::query_scalar(
                        "SELECT id FROM articles WHERE canonical_url = $1
                           AND ($2 IS NULL OR guid IS NULL OR source <> $3)
                         ORDER BY id LIMIT 1",
                    )
                    .bind(&a.canonical_url)
                    .bind(&a.guid)
                    .bind(&a.source)
                    .fetch_optional(&mut *tx)
                    .await?
                }
            };
            let tags = serde_json::to_string(&a.tags)?;
            let categories = serde_json::to_string(&a.categories)?;
            let out = if let Some(id) = existing {
                sqlx::query(
                    "UPDATE articles SET url = $1, canonical_url = $2, title = $3, author = $4, summary = $5,
                         content_html = $6, image = $7, image_alt = $8, tags = $9,
                         published_at = COALESCE($10, published_at), updated_at = $11,
                         source = CASE WHEN guid IS NULL AND $12 IS NOT NULL THEN $13 ELSE source END,
                         guid = COALESCE(guid, $12), categories = $15
                     WHERE id = $14",
                )
                .bind(&a.url)
                .bind(&a.canonical_url)
                .bind(&a.title)
                .bind(&a.author)
                .bind(&a.summary)
                .bind(&a.content_html)
                .bind(&a.image)
                .bind(&a.image_alt)
                .bind(&tags)
                .bind(a.published_at)
                .bind(now)
                .bind(&a.guid)
                .bind(&a.source)
                .bind(id)
                .bind(&categories)
                .execute(&mut *tx)
                .await
                .context("failed to update article")?;
                (id, false)
            } else {
                // The key is unique by construction (a guid within its source; a URL only for
                // an article without one) but a row whose URL moved may still carry an old key.
                let key = match &a.guid {
                    Some(g) => format!("guid:{}:{g}", a.source),
                    None => format!("url:{}", a.canonical_url),
                };
                let taken: Option<i64> =
                    sqlx::query_scalar("SELECT id FROM articles WHERE dedup_key = $1")
                        .bind(&key)
                        .fetch_optional(&mut *tx)
                        .await?;
                let key = match taken {
                    Some(_) => format!("{key}#{}", uuid::Uuid::new_v4().simple()),
                    None => key,
                };
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO articles (dedup_key, guid, url, canonical_url, title, author, summary, content_html,
                                           image, image_alt, tags, published_at, source, arrived_at, updated_at, categories)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14, $15) RETURNING id",
                )
                .bind(&key)
                .bind(&a.guid)
                .bind(&a.url)
                .bind(&a.canonical_url)
                .bind(&a.title)
                .bind(&a.author)
                .bind(&a.summary)
                .bind(&a.content_html)
                .bind(&a.image)
                .bind(&a.image_alt)
                .bind(&tags)
                .bind(a.published_at)
                .bind(&a.source)
                .bind(now)
                .bind(&categories)
                .fetch_one(&mut *tx)
                .await
                .context("failed to store article")?;
                (id, true)
            };
            self.commit(tx).await?;
            Ok(out)
        }

        /// The articles the next digest of `schedule` would carry: those that arrived since its
        /// last digest, newest first by publication time (a date in the future counts as the
        /// arrival time), at most `max`.
        pub(crate) async fn new_articles(
            &self,
            schedule: &str,
            first_since: i64,
            max: u32,
        ) -> anyhow::Result<Vec<Article>> {
            let mut conn = self.pool.acquire().await?;
            Db::select_new_articles(&mut conn, schedule, first_since, max).await
        }

        pub(crate) async fn article_count(&self) -> anyhow::Result<i64> {
            Ok(sqlx::query_scalar("SELECT COUNT(*) FROM articles")
                .fetch_one(&self.pool)
                .await?)
        }

        /// One article by id.
        pub(crate) async fn article(&self, id: i64) -> anyhow::Result<Option<Article>> {
            Ok(sqlx::query_as::<_, Article>("SELECT * FROM articles WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?)
        }

        /// Marks an article urgent (pushed so, or in `alerts.categories`).
        pub(crate) async fn mark_urgent(&self, id: i64) -> anyhow::Result<()> {
            sqlx::query("UPDATE articles SET urgent = 1 WHERE id = $1 AND urgent = 0")
                .bind(id)
                .execute(&self.pool)
                .await?;
            Ok(())
        }

        /// The new articles of `schedule` (see `new_articles`), inside a transaction.
        pub(crate) async fn select_new_articles(
            conn: &mut Conn,
            schedule: &str,
            first_since: i64,
            max: u32,
        ) -> anyhow::Result<Vec<Article>> {
            let watermark: Option<Option<i64>> =
                sqlx::query_scalar("SELECT watermark FROM schedule_state WHERE name = $1")
                    .bind(schedule)
                    .fetch_optional(&mut *conn)
                    .await?;
            // Before a schedule's first digest, "new" means arrived during the last period, not
            // the whole archive.
            let (watermark, since) = match watermark.flatten() {
                Some(w) => (w, 0),
                None => (0, first_since),
            };
            Ok(sqlx::query_as::<_, Article>(
                "SELECT * FROM articles WHERE id > $1 AND arrived_at >= $2
                   AND id NOT IN (SELECT article_id FROM excluded_articles WHERE schedule = $4)
                 ORDER BY CASE WHEN published_at IS NULL OR published_at > arrived_at THEN arrived_at
                               ELSE published_at END DESC, id DESC
                 LIMIT $3",
            )
            .bind(watermark)
            .bind(since)
            .bind(max as i64)
            .bind(schedule)
            .fetch_all(&mut *conn)
            .await?)
        }

        /// Takes an article out of a schedule's coming digest (`exclude`), or puts it back.
        /// Returns whether anything changed.
        pub(crate) async fn exclude_article(
            &self,
            schedule: &str,
            article: i64,
            exclude: bool,
            by: &str,
            now: i64,
        ) -> anyhow::Result<bool> {
            let mut tx = self.begin_write().await?;
            let n = if exclude {
                sqlx::query(
                    "INSERT INTO excluded_articles (schedule, article_id, excluded_by, at)
                     SELECT $1, id, $3, $4 FROM articles WHERE id = $2
                     ON CONFLICT (schedule, article_id) DO NOTHING",
                )
                .bind(schedule)
                .bind(article)
                .bind(by)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected()
            } else {
                sqlx::query("DELETE FROM excluded_articles WHERE schedule = $1 AND article_id = $2")
                    .bind(schedule)
                    .bind(article)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
            };
            self.commit(tx).await?;
            Ok(n > 0)
        }

        /// The articles taken out of a schedule's coming digest that it would otherwise still
        /// carry (newer than its watermark), newest first.
        pub(crate) async fn excluded_articles(&self, schedule: &str) -> anyhow::Result<Vec<ExcludedArticle>> {
            Ok(sqlx::query_as::<_, ExcludedArticle>(
                "SELECT a.id, a.title, a.url, x.excluded_by, x.at
                 FROM excluded_articles x JOIN articles a ON a.id = x.article_id
                 WHERE x.schedule = $1
                   AND a.id > COALESCE((SELECT watermark FROM schedule_state WHERE name = $1), 0)
                 ORDER BY a.id DESC LIMIT 200",
            )
            .bind(schedule)
            .fetch_all(&self.pool)
            .await?)
        }
    }
}
