//! Clicks on the links in digests (`newsletter.click_counts`): counts per article per digest
//! per day, readers who clicked per edition and mailbox provider (the send's report), and
//! "already counted" marks: keyed hashes of (message, article) and of the message alone, so
//! the tables do not say who clicked what; with the server's secret one could test a guess
//! for the 30 days a mark is kept, which is why marks are deleted then.

use super::{ArticleClicks, Click, ClickCounted, ClickTarget, LinkRow, clock::DAY_MS};

/// A mark ("this message clicked this article", "this message clicked") is kept this long,
/// then deleted.
const MARK_DAYS: i64 = 30;

for_each_engine! {
    impl Db {
        /// What a click link names: its message's digest, whether that was a test send, when
        /// it was delivered, the edition it carried and that edition's articles, its
        /// address's domain, and `article`'s URL.
        pub(crate) async fn click_target(
            &self,
            delivery: i64,
            article: i64,
        ) -> anyhow::Result<Option<ClickTarget>> {
            Ok(sqlx::query_as::<_, ClickTarget>(concat!(
                "SELECT d.digest_id, d.sent_at, g.kind,
                        COALESCE(e.article_ids, g.article_ids) AS article_ids, a.url, d.edition,
                        substr(s.email_norm, ", engine_sql!(strpos), "(s.email_norm, '@') + 1) AS domain
                 FROM deliveries d JOIN digests g ON g.id = d.digest_id
                 LEFT JOIN digest_editions e ON e.digest_id = d.digest_id AND e.edition = d.edition
                 LEFT JOIN articles a ON a.id = $2
                 LEFT JOIN subscribers s ON s.id = d.subscriber_id
                 WHERE d.id = $1",
            ))
            .bind(delivery)
            .bind(article)
            .fetch_optional(&self.pool)
            .await?)
        }

        /// Counts a click unless its message clicked that article already; the message's
        /// first counted click also counts a reader who clicked, for its edition and
        /// provider, and for its subject when it is a subject test's sample. One transaction, so a count never goes up without its mark.
        pub(crate) async fn record_click(
            &self,
            click: &Click<'_>,
            now: i64,
        ) -> anyhow::Result<ClickCounted> {
            let mut tx = self.begin_write().await?;
            sqlx::query("DELETE FROM click_marks WHERE at < $1")
                .bind(now - MARK_DAYS * DAY_MS)
                .execute(&mut *tx)
                .await?;
            // The day only: when a mark was made says nothing more than the count does.
            let day = now.div_euclid(DAY_MS);
            let article = mark(&mut tx, click.mark, day).await?;
            let mut first_of_message = false;
            if article {
                sqlx::query(
                    "INSERT INTO article_clicks (digest_id, article_id, day, clicks) VALUES ($1, $2, $3, 1)
                     ON CONFLICT (digest_id, article_id, day) DO UPDATE SET clicks = article_clicks.clicks + 1",
                )
                .bind(click.digest)
                .bind(click.article)
                .bind(day)
                .execute(&mut *tx)
                .await?;
                // A message clicked before has its message mark already.
                first_of_message = mark(&mut tx, click.message_mark, day).await?;
            }
            if first_of_message {
                sqlx::query(
                    "INSERT INTO send_clicks (digest_id, edition, provider, readers) VALUES ($1, $2, $3, 1)
                     ON CONFLICT (digest_id, edition, provider) DO UPDATE SET readers = send_clicks.readers + 1",
                )
                .bind(click.digest)
                .bind(click.edition)
                .bind(click.provider.as_str())
                .execute(&mut *tx)
                .await?;
                // A subject test's sample message: one more reader who clicked its subject.
                sqlx::query(
                    "INSERT INTO subject_clicks (digest_id, variant, readers)
                     SELECT digest_id, variant, 1 FROM deliveries WHERE id = $1 AND variant IS NOT NULL
                     ON CONFLICT (digest_id, variant) DO UPDATE SET readers = subject_clicks.readers + 1",
                )
                .bind(click.delivery)
                .execute(&mut *tx)
                .await?;
            }
            self.commit(tx).await?;
            Ok(ClickCounted { article, first_of_message })
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

        /// A send's readers who clicked, per edition and provider: (edition, provider, readers).
        pub(crate) async fn send_clicks(&self, digest: i64) -> anyhow::Result<Vec<(i64, String, i64)>> {
            Ok(sqlx::query_as(
                "SELECT edition, provider, readers FROM send_clicks WHERE digest_id = $1
                 ORDER BY edition, provider",
            )
            .bind(digest)
            .fetch_all(&self.pool)
            .await?)
        }
    }

    /// Makes a mark of `day`; whether it is new.
    async fn mark(tx: &mut Conn, mark: &str, day: i64) -> anyhow::Result<bool> {
        Ok(sqlx::query(
            "INSERT INTO click_marks (mark, at) VALUES ($1, $2) ON CONFLICT (mark) DO NOTHING",
        )
        .bind(mark)
        .bind(day * DAY_MS)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            > 0)
    }
}
