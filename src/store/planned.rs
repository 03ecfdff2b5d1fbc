//! Sends planned for later: a digest row with `status = 'queued'` and `starts_at`, made when
//! an editor plans it, edited or cancelled while it waits, and filled when it starts.
//!
//! Starting one goes through [`Db::create_digest`] like any send: the digest is rendered at
//! its time and its audience fixed then. Instead of inserting a row, that transaction fills
//! the planned one with a conditional `UPDATE … WHERE status = 'queued'` (and the values the
//! start read, so an edit made meanwhile is not overwritten): however many processes start it,
//! and after a crash, exactly one fills it; the others find it no longer waiting.

use super::{DigestRequest, NewPlan, Plan, PlanFill, RenderedDigest, clock::now_ms};

/// The plan's part of a `WHERE`: still waiting, as read. Its parameters are always $1 to $4
/// ([`bind_plan!`]).
macro_rules! still_planned {
    () => {
        "id = $1 AND status = 'queued' AND starts_at = $2
         AND COALESCE(planned_subject, '') = $3 AND COALESCE(local_time, '') = $4"
    };
}

/// $1 to $4 of [`still_planned!`], bound to the query `$q`.
macro_rules! bind_plan {
    ($q:expr, $p:expr) => {
        $q.bind($p.id)
            .bind($p.starts_at)
            .bind($p.subject.unwrap_or_default())
            .bind($p.local_time.unwrap_or_default())
    };
}

/// The columns a [`Plan`] is read from.
macro_rules! plan_columns {
    () => {
        "SELECT id, schedule, status, starts_at, subject, planned_subject, local_time, created_by, reason
         FROM digests WHERE "
    };
}

for_each_engine! {
    impl Db {
        /// Stores a planned send; its id is the send's for good.
        pub(crate) async fn plan_send(&self, p: NewPlan<'_>) -> anyhow::Result<i64> {
            let id = sqlx::query_scalar(
                "INSERT INTO digests (schedule, kind, subject, html, text, article_ids, status,
                                      created_at, created_by, starts_at, planned_subject, local_time)
                 VALUES ($1, 'manual', $2, '', '', '[]', 'queued', $3, $4, $5, $6, $7)
                 RETURNING id",
            )
            .bind(p.schedule)
            .bind(p.subject)
            .bind(now_ms())
            .bind(p.created_by)
            .bind(p.starts_at)
            .bind(p.planned_subject)
            .bind(p.local_time)
            .fetch_one(&self.pool)
            .await?;
            self.check_file()?;
            Ok(id)
        }

        /// A planned send, waiting or started; `None` for any other send.
        pub(crate) async fn plan(&self, id: i64) -> anyhow::Result<Option<Plan>> {
            Ok(sqlx::query_as::<_, Plan>(concat!(
                plan_columns!(),
                "id = $1 AND starts_at IS NOT NULL"
            ))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
        }

        /// Planned sends still waiting, soonest first; with `due_by`, only those due by then.
        pub(crate) async fn waiting_plans(&self, due_by: Option<i64>, limit: i64) -> anyhow::Result<Vec<Plan>> {
            Ok(sqlx::query_as::<_, Plan>(concat!(
                plan_columns!(),
                "status = 'queued' AND ($1 IS NULL OR starts_at <= $1) ORDER BY starts_at, id LIMIT $2"
            ))
            .bind(due_by)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?)
        }

        /// When the next planned send starts.
        pub(crate) async fn next_plan_at(&self) -> anyhow::Result<Option<i64>> {
            Ok(sqlx::query_scalar(
                "SELECT CAST(MIN(starts_at) AS BIGINT) FROM digests WHERE status = 'queued'",
            )
            .fetch_one(&self.pool)
            .await?)
        }

        /// A waiting send as `p` says (its `created_by` aside). False once it started or was
        /// cancelled.
        pub(crate) async fn edit_plan(&self, id: i64, p: NewPlan<'_>) -> anyhow::Result<bool> {
            let n = sqlx::query(
                "UPDATE digests SET starts_at = $1, subject = $2, planned_subject = $3, local_time = $4
                 WHERE id = $5 AND status = 'queued'",
            )
            .bind(p.starts_at)
            .bind(p.subject)
            .bind(p.planned_subject)
            .bind(p.local_time)
            .bind(id)
            .execute(&self.pool)
            .await?
            .rows_affected();
            self.check_file()?;
            Ok(n == 1)
        }

        /// Cancels a waiting send that can no longer start (its schedule left the
        /// configuration), saying why.
        pub(crate) async fn drop_plan(&self, id: i64, reason: &str) -> anyhow::Result<bool> {
            let n = sqlx::query(
                "UPDATE digests SET status = 'cancelled', reason = $1, finished_at = $2
                 WHERE id = $3 AND status = 'queued'",
            )
            .bind(reason)
            .bind(now_ms())
            .bind(id)
            .execute(&self.pool)
            .await?
            .rows_affected();
            Ok(n == 1)
        }

        /// Inside [`Db::create_digest`]: fills the planned row with the digest rendered now,
        /// sending from `now`. `None` when it is no longer waiting as read (started by another
        /// process, cancelled or edited meanwhile).
        pub(crate) async fn fill_plan(
            conn: &mut Conn,
            plan: PlanFill<'_>,
            req: &DigestRequest<'_>,
            rendered: &RenderedDigest,
            now: i64,
        ) -> anyhow::Result<Option<i64>> {
            let q = sqlx::query_scalar(concat!(
                "UPDATE digests SET kind = $5, subject = $6, html = $7, text = $8, web_html = $9,
                     slot_key = $10, preheader = $11, article_ids = $12, status = 'sending',
                     created_at = $13, started_at = $13
                 WHERE ",
                still_planned!(),
                " RETURNING id"
            ));
            Ok(bind_plan!(q, plan)
                .bind(req.kind.as_str())
                .bind(&rendered.subject)
                .bind(&rendered.html)
                .bind(&rendered.text)
                .bind(&rendered.web_html)
                .bind(&rendered.slot_key)
                .bind(&rendered.preheader)
                .bind(serde_json::to_string(&rendered.article_ids)?)
                .bind(now)
                .fetch_optional(&mut *conn)
                .await?)
        }

        /// Inside [`Db::create_digest`]: nothing was new at the planned send's time; it is
        /// done, having sent nothing, and says why. False when it is no longer waiting as read.
        pub(crate) async fn plan_found_nothing(conn: &mut Conn, plan: PlanFill<'_>) -> anyhow::Result<bool> {
            let q = sqlx::query(concat!(
                "UPDATE digests SET status = 'done', reason = 'nothing_new', total = 0,
                     started_at = $5, finished_at = $5
                 WHERE ",
                still_planned!(),
            ));
            Ok(bind_plan!(q, plan).bind(now_ms()).execute(&mut *conn).await?.rows_affected() == 1)
        }
    }
}
