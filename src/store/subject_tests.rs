//! Subject tests: samples of a send's audience get one subject each, the rest wait; after the
//! wait the subject whose readers clicked most goes to the rest. The ledger does the sending:
//! each sample row names its subject (`variant`), held rows wait at [`HELD`], and choosing
//! the winner releases them, once, whatever process does it.

use super::{SubjectTest, SubjectTestRow};

/// A digest's test columns: subjects (JSON), when decided, the winner, the note.
type TestColumns = (Option<String>, Option<i64>, Option<i64>, Option<String>);

/// Where the rest of a test's audience waits: past any real instant, so no claim takes them.
pub const HELD: i64 = i64::MAX / 4;

for_each_engine! {
    impl Db {
        /// Inside the transaction that makes the digest `digest` with `total` rows: draws
        /// each subject's sample at random and holds the rest. An audience too small for
        /// samples of `min_sample` gets the first subject, and the test says why.
        pub(crate) async fn start_subject_test(
            conn: &mut Conn,
            digest: i64,
            test: &SubjectTest,
            total: i64,
            now: i64,
        ) -> anyhow::Result<()> {
            let k = test.subjects.len() as i64;
            let per = sample_size(total, test);
            let subjects = serde_json::to_string(&test.subjects)?;
            if per * k >= total {
                let note = format!(
                    "too_small: {total} readers cannot give {k} samples of {per} and leave a rest"
                );
                sqlx::query(
                    "UPDATE digests SET test_subjects = $1, test_decide_at = $2, test_winner = 0,
                         test_note = $3, subject = $4 WHERE id = $5",
                )
                .bind(&subjects)
                .bind(now)
                .bind(note)
                .bind(&test.subjects[0])
                .bind(digest)
                .execute(&mut *conn)
                .await?;
                sqlx::query("UPDATE digest_editions SET subject = $1 WHERE digest_id = $2")
                    .bind(&test.subjects[0])
                    .bind(digest)
                    .execute(&mut *conn)
                    .await?;
                return Ok(());
            }
            for v in 0..k {
                sqlx::query(
                    "UPDATE deliveries SET variant = $1 WHERE id IN (
                         SELECT id FROM deliveries WHERE digest_id = $2 AND variant IS NULL
                         AND state = 'pending' ORDER BY random() LIMIT $3)",
                )
                .bind(v)
                .bind(digest)
                .bind(per)
                .execute(&mut *conn)
                .await?;
            }
            sqlx::query(
                "UPDATE deliveries SET next_attempt_at = $1
                 WHERE digest_id = $2 AND variant IS NULL AND state = 'pending'",
            )
            .bind(HELD)
            .bind(digest)
            .execute(&mut *conn)
            .await?;
            sqlx::query("UPDATE digests SET test_subjects = $1, test_decide_at = $2 WHERE id = $3")
                .bind(subjects)
                .bind(now + test.wait_ms)
                .bind(digest)
                .execute(&mut *conn)
                .await?;
            Ok(())
        }

        /// Sends whose test is due to be decided (`now` past its wait, no winner yet).
        pub(crate) async fn due_subject_tests(&self, now: i64) -> anyhow::Result<Vec<i64>> {
            Ok(sqlx::query_scalar(
                "SELECT id FROM digests WHERE test_subjects IS NOT NULL AND test_winner IS NULL
                   AND test_decide_at <= $1 AND status IN ('sending', 'paused', 'failed')
                 ORDER BY id LIMIT 20",
            )
            .bind(now)
            .fetch_all(&self.pool)
            .await?)
        }

        /// A test's subjects with, for each, the readers of its sample, how many were sent,
        /// and how many of those clicked.
        pub(crate) async fn subject_test(&self, digest: i64) -> anyhow::Result<Option<SubjectTestRow>> {
            let row: Option<TestColumns> = sqlx::query_as(
                "SELECT test_subjects, test_decide_at, test_winner, test_note FROM digests WHERE id = $1",
            )
            .bind(digest)
            .fetch_optional(&self.pool)
            .await?;
            let Some((Some(subjects), decide_at, winner, note)) = row else {
                return Ok(None);
            };
            let subjects: Vec<String> = serde_json::from_str(&subjects)?;
            let counts: Vec<(i64, i64, i64)> = sqlx::query_as(
                "SELECT variant, CAST(COUNT(*) AS BIGINT),
                        CAST(SUM(CASE WHEN state = 'sent' THEN 1 ELSE 0 END) AS BIGINT)
                 FROM deliveries WHERE digest_id = $1 AND variant IS NOT NULL GROUP BY variant",
            )
            .bind(digest)
            .fetch_all(&self.pool)
            .await?;
            let clicks: Vec<(i64, i64)> = sqlx::query_as(
                "SELECT variant, readers FROM subject_clicks WHERE digest_id = $1",
            )
            .bind(digest)
            .fetch_all(&self.pool)
            .await?;
            let mut row = SubjectTestRow::new(subjects, decide_at.unwrap_or(0), winner, note);
            for (v, readers, sent) in counts {
                if let Some(s) = row.subjects.get_mut(v as usize) {
                    (s.readers, s.sent) = (readers, sent);
                }
            }
            for (v, n) in clicks {
                if let Some(s) = row.subjects.get_mut(v as usize) {
                    s.clicked = n;
                }
            }
            Ok(Some(row))
        }

        /// Records `winner` (and why) for `digest`'s test and releases the rest of its
        /// audience with the winner's subject, unless another process decided first.
        pub(crate) async fn decide_subject_test(
            &self,
            digest: i64,
            winner: i64,
            subject: &str,
            note: &str,
            now: i64,
        ) -> anyhow::Result<bool> {
            let mut tx = self.begin_write().await?;
            let won = sqlx::query(
                "UPDATE digests SET test_winner = $1, test_note = $2, subject = $3
                 WHERE id = $4 AND test_winner IS NULL AND test_subjects IS NOT NULL",
            )
            .bind(winner)
            .bind(note)
            .bind(subject)
            .bind(digest)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 1;
            if won {
                sqlx::query("UPDATE digest_editions SET subject = $1 WHERE digest_id = $2")
                    .bind(subject)
                    .bind(digest)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "UPDATE deliveries SET next_attempt_at = $1
                     WHERE digest_id = $2 AND variant IS NULL AND state = 'pending' AND next_attempt_at = $3",
                )
                .bind(now)
                .bind(digest)
                .bind(HELD)
                .execute(&mut *tx)
                .await?;
            }
            self.commit(tx).await?;
            Ok(won)
        }
    }
}

/// Each subject's sample: `sample_percent` of `total`, at least `min_sample`.
pub fn sample_size(total: i64, test: &SubjectTest) -> i64 {
    let share = (total * test.sample_percent as i64 + 99) / 100;
    share.max(test.min_sample as i64)
}
