//! Digests: creation with the whole audience, the archive, progress from counters, and the
//! controls (pause, resume, cancel, stop, retry).
//!
//! A little over 500 lines: one aggregate's SQL, written once for both engines. Creating a
//! digest, its editions and its audience is one transaction whose parts are read together;
//! split, they would be harder to check against each other.

use super::{
    ALERT_SCHEDULE, ArchiveEntry, Digest, DigestKind, DigestOutcome, DigestRequest, DigestStatus,
    Edition, Failure, Progress, RenderedDigest, RenderedEdition,
    clock::now_ms,
    shared::{CHOICES_LOCK, test_address},
};

/// The SQL clause "reader `s` takes this schedule", given the numbers of two parameters: the
/// `LIKE` pattern ([`schedule_pattern`]) and 1 when readers who never chose schedules get it
/// (the schedule's `default`). A literal, so the queries that use it stay `&'static str`.
macro_rules! takes_schedule {
    ($pattern:literal, $for_new_readers:literal) => {
        concat!(
            "((s.schedules IS NULL AND $",
            $for_new_readers,
            " = 1) OR ',' || s.schedules || ',' LIKE $",
            $pattern,
            " ESCAPE '\\')"
        )
    };
}

/// `LIKE` pattern matching a subscriber's `schedules` list (wrapped in commas) that names
/// `schedule`.
pub(super) fn schedule_pattern(schedule: &str) -> String {
    let escaped = schedule
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%,{escaped},%")
}

for_each_engine! {
    impl Db {
        /// Stores a digest rendered from `articles` and its whole audience, in one
        /// transaction.
        ///
        /// The digest was rendered before this, outside any lock. Under the schedule's lock: a
        /// scheduled slot that already has a digest returns it; the new articles are read
        /// again, and if they are no longer the ones rendered (an article arrived meanwhile)
        /// the caller renders again ([`DigestOutcome::Stale`]). Otherwise the digest is
        /// stored, one ledger row per confirmed subscriber is written (the audience is fixed
        /// here) and the schedule's watermark moves past every article that has arrived. Two
        /// triggers at once, in one process or two, therefore produce one digest and one
        /// "nothing new". With no articles and no rendering, only the slot is recorded.
        ///
        /// Readers who chose sections get the edition rendered for their choice (if it has
        /// articles; none, and they get nothing this time); the others get the digest itself.
        /// Readers who left the schedule are not in its audience.
        pub(crate) async fn create_digest(
            &self,
            req: DigestRequest<'_>,
            rendered_ids: &[i64],
            rendered: Option<&RenderedDigest>,
            editions: &[RenderedEdition],
        ) -> anyhow::Result<DigestOutcome> {
            let mut tx = self.begin_write().await?;
            Db::lock(&mut tx, &format!("digest:{}", req.schedule)).await?;
            Db::lock(&mut tx, CHOICES_LOCK).await?;
            let out =
                Db::create_digest_tx(&mut tx, req, rendered_ids, rendered, editions).await?;
            self.commit(tx).await?;
            Ok(out)
        }

        async fn create_digest_tx(
            conn: &mut Conn,
            req: DigestRequest<'_>,
            rendered_ids: &[i64],
            rendered: Option<&RenderedDigest>,
            editions: &[RenderedEdition],
        ) -> anyhow::Result<DigestOutcome> {
            if let Some(slot) = req.slot {
                let existing: Option<i64> = sqlx::query_scalar(
                    "SELECT id FROM digests WHERE schedule = $1 AND slot = $2",
                )
                .bind(req.schedule)
                .bind(slot)
                .fetch_optional(&mut *conn)
                .await?;
                if let Some(id) = existing {
                    return Ok(DigestOutcome::Exists(id));
                }
            }
            let ids: Vec<i64> =
                Db::select_new_articles(conn, req.schedule, req.first_since, req.max_articles)
                    .await?
                    .iter()
                    .map(|a| a.id)
                    .collect();
            if ids != rendered_ids
                || (req.test_to.is_none()
                    && (Db::select_section_choices(conn, req.schedule, req.for_new_readers).await?
                        != req.choices
                        || Db::select_alerted(conn, req.schedule, &ids).await? != req.alerted))
            {
                return Ok(DigestOutcome::Stale);
            }
            if !Db::desk_is(conn, req.schedule, req.desk).await? {
                return Ok(DigestOutcome::Stale);
            }
            let advance = |slot: Option<i64>, watermark: Option<i64>| {
                sqlx::query(
                    "INSERT INTO schedule_state (name, last_slot, watermark) VALUES ($1, COALESCE($2, $4), $3)
                     ON CONFLICT (name) DO UPDATE SET
                         last_slot = CASE WHEN $2 IS NOT NULL AND $2 > schedule_state.last_slot
                                          THEN $2 ELSE schedule_state.last_slot END,
                         watermark = COALESCE($3, schedule_state.watermark)",
                )
                .bind(req.schedule)
                .bind(slot)
                .bind(watermark)
                .bind(now_ms())
            };
            if req.kind == DigestKind::Scheduled {
                let paused: Option<i64> =
                    sqlx::query_scalar("SELECT paused FROM schedule_state WHERE name = $1")
                        .bind(req.schedule)
                        .fetch_optional(&mut *conn)
                        .await?;
                if paused == Some(1) {
                    // The slot passes; its articles wait for the first digest after resuming.
                    advance(req.slot, None).execute(&mut *conn).await?;
                    return Ok(DigestOutcome::Paused);
                }
            }
            let Some(rendered) = rendered.filter(|_| !ids.is_empty()) else {
                if req.test_to.is_none() {
                    advance(req.slot, None).execute(&mut *conn).await?;
                }
                // A send planned for later: done, having found nothing new (store::planned).
                if let Some(p) = req.plan
                    && !Db::plan_found_nothing(conn, p).await?
                {
                    return Ok(DigestOutcome::Exists(p.id));
                }
                return Ok(DigestOutcome::NothingNew);
            };
            let now = now_ms();
            let insert = sqlx::query_scalar(
                "INSERT INTO digests (schedule, kind, slot, subject, html, text, web_html, slot_key, preheader,
                                      article_ids, test_to, status, created_at, started_at, created_by)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'sending', $12, $12, $13) RETURNING id",
            )
            .bind(req.schedule)
            .bind(req.kind.as_str())
            .bind(req.slot)
            .bind(&rendered.subject)
            .bind(&rendered.html)
            .bind(&rendered.text)
            .bind(&rendered.web_html)
            .bind(&rendered.slot_key)
            .bind(&rendered.preheader)
            .bind(serde_json::to_string(&rendered.article_ids)?)
            .bind(req.test_to)
            .bind(now)
            .bind(req.created_by);
            // A send planned for later fills its waiting row instead, once (store::planned).
            let id: i64 = match req.plan {
                None => insert.fetch_one(&mut *conn).await?,
                Some(p) => match Db::fill_plan(conn, p, &req, rendered, now).await? {
                    Some(id) => id,
                    None => return Ok(DigestOutcome::Exists(p.id)),
                },
            };
            if req.test_to.is_none() {
                // What the editor set was for this digest only.
                Db::drop_desk(conn, req.schedule).await?;
            }
            let total = if let Some(list) = req.test_to {
                // A test send's k-th address is "reader" -k (0, -1, …): no reader has that id,
                // and the ledger's one row per (digest, reader) holds for each address.
                let mut n = 0;
                for k in 0..list.split(',').count() as i64 {
                    n += sqlx::query(
                        "INSERT INTO deliveries (digest_id, subscriber_id, state) VALUES ($1, $2, 'pending')",
                    )
                    .bind(id)
                    .bind(-k)
                    .execute(&mut *conn)
                    .await?
                    .rows_affected();
                }
                n
            } else {
                for (i, e) in editions.iter().enumerate() {
                    let r = &e.rendered;
                    sqlx::query(
                        "INSERT INTO digest_editions (digest_id, edition, sections, subject, html, text, preheader, article_ids)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    )
                    .bind(id)
                    .bind(i as i64 + 1)
                    .bind(&e.sections)
                    .bind(&r.subject)
                    .bind(&r.html)
                    .bind(&r.text)
                    .bind(&r.preheader)
                    .bind(serde_json::to_string(&r.article_ids)?)
                    .execute(&mut *conn)
                    .await?;
                }
                // A local-hour digest's rows carry their wave and wait for it: the instant
                // of each zone readers chose, joined in as a small table (one pass).
                let waves = match req.waves {
                    Some(w) => Some(Db::wave_table(conn, w).await?),
                    None => None,
                };
                let (with, columns, values, join) = match &waves {
                    Some((table, default)) => (
                        format!("WITH w (zone, at) AS (VALUES {table}) "),
                        ", wave, not_before, next_attempt_at",
                        format!(
                            ", COALESCE(s.timezone, $5), COALESCE(w.at, {default}), COALESCE(w.at, {default})"
                        ),
                        "LEFT JOIN w ON w.zone = COALESCE(s.timezone, $5)",
                    ),
                    None => (String::new(), "", String::new(), ""),
                };
                let sql = format!(
                    "{with}INSERT INTO deliveries (digest_id, subscriber_id, state, edition{columns})
                     SELECT $1, s.id, 'pending', COALESCE(e.edition, 0){values}
                     FROM subscribers s
                     LEFT JOIN schedule_sections o ON o.subscriber_id = s.id AND o.schedule = $3
                     LEFT JOIN digest_editions e ON e.digest_id = $1
                                                AND e.sections = COALESCE(o.sections, s.sections)
                     {join}
                     WHERE s.status = 'confirmed' AND {takes}
                       AND (COALESCE(o.sections, s.sections) IS NULL OR e.edition IS NOT NULL)
                     ORDER BY s.id",
                    takes = takes_schedule!(2, 4),
                );
                let mut insert = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(id)
                    .bind(schedule_pattern(req.schedule))
                    .bind(req.schedule)
                    .bind(req.for_new_readers as i64);
                if let Some(w) = req.waves {
                    insert = insert.bind(w.newsroom);
                }
                let n = insert.execute(&mut *conn).await?.rows_affected();
                let left_out = Db::leave_out_alerted(conn, id, req.without, editions).await?;
                let n = n - left_out;
                if let Some(test) = req.subject_test {
                    Db::start_subject_test(conn, id, test, n as i64, now).await?;
                }
                let max_id: i64 =
                    sqlx::query_scalar("SELECT CAST(COALESCE(MAX(id), 0) AS BIGINT) FROM articles")
                        .fetch_one(&mut *conn)
                        .await?;
                advance(req.slot, Some(max_id)).execute(&mut *conn).await?;
                n
            };
            let status = if total == 0 {
                DigestStatus::Done
            } else {
                DigestStatus::Sending
            };
            sqlx::query(
                "UPDATE digests SET total = $1, status = $2,
                     finished_at = CASE WHEN $2 = 'done' THEN $3 END WHERE id = $4",
            )
            .bind(total as i64)
            .bind(status.as_str())
            .bind(now)
            .bind(id)
            .execute(&mut *conn)
            .await?;
            Ok(DigestOutcome::Created {
                id,
                recipients: total as i64,
            })
        }

        /// The distinct section choices among the confirmed readers of `schedule` (readers
        /// who take every section are not among them), in order.
        pub(crate) async fn section_choices(
            &self,
            schedule: &str,
            for_new_readers: bool,
        ) -> anyhow::Result<Vec<String>> {
            let mut conn = self.pool.acquire().await?;
            Db::select_section_choices(&mut conn, schedule, for_new_readers).await
        }

        /// How many confirmed readers get `schedule`, by the sections they chose (`None`:
        /// every section): who a send made now would reach, and with which edition.
        pub(crate) async fn audience_by_choice(
            &self,
            schedule: &str,
            for_new_readers: bool,
        ) -> anyhow::Result<Vec<(Option<String>, i64)>> {
            Ok(sqlx::query_as(concat!(
                "SELECT COALESCE(o.sections, s.sections) AS chosen, CAST(COUNT(*) AS BIGINT)
                 FROM subscribers s
                 LEFT JOIN schedule_sections o ON o.subscriber_id = s.id AND o.schedule = $2
                 WHERE s.status = 'confirmed' AND ",
                takes_schedule!(1, 3),
                " GROUP BY COALESCE(o.sections, s.sections) ORDER BY chosen",
            ))
            .bind(schedule_pattern(schedule))
            .bind(schedule)
            .bind(for_new_readers as i64)
            .fetch_all(&self.pool)
            .await?)
        }

        async fn select_section_choices(
            conn: &mut Conn,
            schedule: &str,
            for_new_readers: bool,
        ) -> anyhow::Result<Vec<String>> {
            Ok(sqlx::query_scalar(concat!(
                "SELECT DISTINCT COALESCE(o.sections, s.sections) AS chosen FROM subscribers s
                 LEFT JOIN schedule_sections o ON o.subscriber_id = s.id AND o.schedule = $2
                 WHERE s.status = 'confirmed' AND COALESCE(o.sections, s.sections) IS NOT NULL AND ",
                takes_schedule!(1, 3),
                " ORDER BY chosen",
            ))
            .bind(schedule_pattern(schedule))
            .bind(schedule)
            .bind(for_new_readers as i64)
            .fetch_all(&mut *conn)
            .await?)
        }

        /// One of a digest's editions (1 and up; 0 is the digest itself).
        pub(crate) async fn digest_edition(
            &self,
            digest: i64,
            edition: i64,
        ) -> anyhow::Result<Option<Edition>> {
            Ok(sqlx::query_as::<_, Edition>(
                "SELECT edition, sections, subject, html, text, article_ids
                 FROM digest_editions WHERE digest_id = $1 AND edition = $2",
            )
            .bind(digest)
            .bind(edition)
            .fetch_optional(&self.pool)
            .await?)
        }

        pub(crate) async fn digest_status(&self, id: i64) -> anyhow::Result<Option<DigestStatus>> {
            let s: Option<String> = sqlx::query_scalar("SELECT status FROM digests WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
            Ok(s.map(|s| s.parse()).transpose()?)
        }

        pub(crate) async fn digest(&self, id: i64) -> anyhow::Result<Option<Digest>> {
            Ok(sqlx::query_as::<_, Digest>(
                "SELECT id, schedule, kind, slot, subject, html, text, web_html, slot_key, preheader,
                        article_ids, test_to, status, total, error, created_at, started_at, finished_at, test_subjects
                 FROM digests WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
        }

        /// Sent digests for the public archive (test sends and cancelled ones are not
        /// published, nor sends planned for later that wait or found nothing new).
        pub(crate) async fn archive(&self, limit: i64, offset: i64) -> anyhow::Result<Vec<ArchiveEntry>> {
            Ok(sqlx::query_as::<_, ArchiveEntry>(
                "SELECT id, schedule, subject, created_at FROM digests
                 WHERE kind <> 'test' AND status NOT IN ('cancelled', 'queued') AND reason IS NULL
                   AND schedule <> $3
                 ORDER BY id DESC LIMIT $1 OFFSET $2",
            )
            .bind(limit)
            .bind(offset)
            .bind(ALERT_SCHEDULE)
            .fetch_all(&self.pool)
            .await?)
        }

        /// A send's progress from the counters kept with it: no count over its ledger.
        pub(crate) async fn progress(&self, id: i64) -> anyhow::Result<Option<Progress>> {
            Ok(sqlx::query_as::<_, Progress>(
                "SELECT id, status, total, sent, failed, skipped, cancelled, in_flight,
                        total - sent - failed - skipped - cancelled AS pending,
                        error, started_at, finished_at,
                        guard_reason, guard_count, guard_delivered, guard_limit
                 FROM digests WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
        }

        /// Moves a digest between sending, paused and cancelled. Returns false when the
        /// digest is not in a state that allows the change (a send planned for later, still
        /// `queued`, is cancelled, never paused: it has nothing to pause yet).
        ///
        /// Resuming a send that was stopped (failed) puts its failed deliveries back in the
        /// queue: the failures that stopped it were the relay's, and say nothing about the
        /// readers.
        pub(crate) async fn set_digest_status(
            &self,
            id: i64,
            to: DigestStatus,
        ) -> anyhow::Result<bool> {
            let now = now_ms();
            let mut tx = self.begin_write().await?;
            let changed = match to {
                DigestStatus::Paused => sqlx::query(
                    "UPDATE digests SET status = 'paused' WHERE id = $1 AND status = 'sending'",
                )
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected(),
                DigestStatus::Sending => {
                    let was: Option<String> =
                        sqlx::query_scalar("SELECT status FROM digests WHERE id = $1")
                            .bind(id)
                            .fetch_optional(&mut *tx)
                            .await?;
                    if was.as_deref() == Some(DigestStatus::Failed.as_str()) {
                        Db::requeue_failed(&mut tx, id).await?;
                    }
                    Db::rearm_guard(&mut tx, id).await?;
                    sqlx::query(
                        "UPDATE digests SET status = 'sending', error = NULL, finished_at = NULL
                         WHERE id = $1 AND status IN ('paused', 'failed')",
                    )
                    .bind(id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
                }
                DigestStatus::Cancelled => {
                    let r = sqlx::query(
                        "UPDATE digests SET status = 'cancelled', finished_at = $1
                         WHERE id = $2 AND status IN ('queued', 'sending', 'paused', 'failed')",
                    )
                    .bind(now)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    let n = sqlx::query(
                        "UPDATE deliveries SET state = 'cancelled' WHERE digest_id = $1 AND state = 'pending'",
                    )
                    .bind(id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    Db::count(&mut tx, id, "cancelled", n as i64).await?;
                    r
                }
                other => anyhow::bail!("a send cannot be set to {other}"),
            };
            self.commit(tx).await?;
            Ok(changed > 0)
        }

        /// Failed deliveries back to the queue with fresh attempts, for readers still
        /// subscribed.
        async fn requeue_failed(conn: &mut Conn, digest: i64) -> anyhow::Result<u64> {
            Db::forget_refusals(conn, digest).await?;
            let n = sqlx::query(
                "UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_at = 0, permanent = 0
                 WHERE digest_id = $1 AND state = 'failed'
                   AND (subscriber_id <= 0 OR subscriber_id IN (SELECT id FROM subscribers WHERE status = 'confirmed'))",
            )
            .bind(digest)
            .execute(&mut *conn)
            .await?
            .rows_affected();
            Db::count(conn, digest, "failed", -(n as i64)).await?;
            Ok(n)
        }

        /// Stops a send that cannot make progress, keeping its ledger for a later resume.
        pub(crate) async fn fail_digest(&self, id: i64, error: &str) -> anyhow::Result<()> {
            sqlx::query(
                "UPDATE digests SET status = 'failed', error = $1 WHERE id = $2 AND status = 'sending'",
            )
            .bind(error)
            .bind(id)
            .execute(&self.pool)
            .await?;
            self.check_file()
        }

        /// Puts a send's failed deliveries back in the queue (readers still subscribed; a
        /// failure already counted as a bounce after a finished send stays counted, but is
        /// retried all the same).
        pub(crate) async fn retry_failed(&self, id: i64) -> anyhow::Result<u64> {
            let mut tx = self.begin_write().await?;
            let n = Db::requeue_failed(&mut tx, id).await?;
            if n > 0 {
                // A send the guard paused is judged afresh from here, as after a resume.
                Db::rearm_guard(&mut tx, id).await?;
                sqlx::query(
                    "UPDATE digests SET status = 'sending', error = NULL, finished_at = NULL
                     WHERE id = $1 AND status <> 'cancelled'",
                )
                .bind(id)
                .execute(&mut *tx)
                .await?;
            }
            self.commit(tx).await?;
            Ok(n)
        }

        pub(crate) async fn failures(&self, id: i64, limit: i64) -> anyhow::Result<Vec<Failure>> {
            let rows: Vec<(Option<String>, i64, i64, String)> = sqlx::query_as(
                "SELECT COALESCE(s.email, g.test_to), d.subscriber_id, d.attempts, COALESCE(d.last_error, '')
                 FROM deliveries d JOIN digests g ON g.id = d.digest_id
                 LEFT JOIN subscribers s ON s.id = d.subscriber_id AND d.subscriber_id > 0
                 WHERE d.digest_id = $1 AND d.state = 'failed' ORDER BY d.id LIMIT $2",
            )
            .bind(id)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
            Ok(rows
                .into_iter()
                .map(|(email, reader, attempts, error)| Failure {
                    email: if reader <= 0 {
                        test_address(email.as_deref(), reader)
                    } else {
                        email
                    }
                    .unwrap_or_default(),
                    attempts,
                    error,
                })
                .collect())
        }
    }
}
