//! Clicks on the links in digests (`newsletter.click_counts`): counts per article per digest
//! per day, and "already counted" marks: a keyed hash of (message, article), so the table
//! alone does not say who clicked what; with the server's secret one could test a guess for
//! the 30 days a mark is kept, which is why marks are deleted then.

use super::{ArticleClicks, ClickTarget, LinkRow, clock::DAY_MS};

/// A "this message clicked this article" mark is kept this long, then deleted.
const MARK_DAYS: i64 = 30;

for_each_engine! {
    impl Db {
        /// What a click link names: its message's digest, whether that was a test send, when
        /// it was delivered, the articles of the edition it carried, and `article`'s URL.
        pub(crate) async fn click_target(
            &self,
            delivery: i64,
            article: i64,
        ) -> anyhow::Result<Option<ClickTarget>> {
            Ok(sqlx::query_as::<_, ClickTarget>(
                "SELECT d.digest_id, d.sent_at, g.kind,
                        COALESCE(e.article_ids, g.article_ids) AS article_ids, a.url
                 FROM deliveries d JOIN digests g ON g.id = d.digest_id
                 LEFT JOIN digest_editions e ON e.digest_id = d.digest_id AND e.edition = d.edition
                 LEFT JOIN articles a ON a.id = $2
                 WHERE d.id = $1",
            )
            .bind(delivery)
            .bind(article)
            .fetch_optional(&self.pool)
            .await?)
        }

        /// Counts a click unless `mark` was counted already. Returns whether it counted.
        pub(crate) async fn record_click(
            &self,
            digest: i64,
            article: i64,
            mark: &str,
            now: i64,
        ) -> anyhow::Result<bool> {
            let mut tx = self.begin_write().await?;
            sqlx::query("DELETE FROM click_marks WHERE at < $1")
                .bind(now - MARK_DAYS * DAY_MS)
                .execute(&mut *tx)
                .await?;
            let new = sqlx::query(
                "INSERT INTO click_marks (mark, at) VALUES ($1, $2) ON CONFLICT (mark) DO NOTHING",
            )
            .bind(mark)
            // The day only: when a mark was made says nothing more than the count does.
            .bind(now.div_euclid(DAY_MS) * DAY_MS)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                > 0;
            if new {
                sqlx::query(
                    "INSERT INTO article_clicks (digest_id, article_id, day, clicks) VALUES ($1, $2, $3, 1)
                     ON CONFLICT (digest_id, article_id, day) DO UPDATE SET clicks = article_clicks.clicks + 1",
                )
                .bind(digest)
                .bind(article)
                .bind(now.div_euclid(DAY_MS))
                .execute(&mut *tx)
                .await?;
            }
            self.commit(tx).await?;
            Ok(new)
        }

        /// The most-clicked articles of the days since `since` (ms), most first.
        pub(crate) async fn most_clicked(&self, since: i64, limit: i64) -> anyhow::Result<Vec<LinkRow>> {
            Ok(sqlx::query_as::<_, LinkRow>(
                "SELECT a.title, a.url FROM articles a
                 JOIN (SELECT article_id, SUM(clicks) AS n FROM article_clicks
                       WHERE day >= $1 GROUP BY article_id) c ON c.article_id = a.id
                 ORDER BY c.n DESC, a.id DESC LIMIT $2",
            )
            .bind(since.div_euclid(DAY_MS))
            .bind(limit)
            .fetch_all(&self.pool)
            .await?)
        }

        /// A digest's clicks per article, most first.
        pub(crate) async fn digest_clicks(&self, digest: i64) -> anyhow::Result<Vec<ArticleClicks>> {
            Ok(sqlx::query_as::<_, ArticleClicks>(
                "SELECT c.article_id, a.title, a.url, CAST(SUM(c.clicks) AS BIGINT) AS clicks
                 FROM article_clicks c JOIN articles a ON a.id = c.article_id
                 WHERE c.digest_id = $1 GROUP BY c.article_id, a.title, a.url
                 ORDER BY clicks DESC, c.article_id",
            )
            .bind(digest)
            .fetch_all(&self.pool)
            .await?)
        }
    }
}
