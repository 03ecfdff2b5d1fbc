//! A send's counters (`sent`, `failed`, `skipped`, `cancelled`, `in_flight`, and the send
//! guard's `rejected`, `hard_bounces`, `complaints`), kept on its `digests` row as the ledger
//! moves, so a send's progress is one row's read however large the send.

use anyhow::Context;

use super::shared::CounterDelta;

for_each_engine! {
    impl Db {
        /// Adds `n` to one of a digest's counters (`sent`, `failed`, `skipped`, `cancelled`,
        /// `in_flight`; the send guard's `rejected`, `hard_bounces`, `complaints`).
        pub(crate) async fn count(
            conn: &mut Conn,
            digest: i64,
            counter: &'static str,
            n: i64,
        ) -> anyhow::Result<()> {
            if n == 0 {
                return Ok(());
            }
            let q = match counter {
                "sent" => "UPDATE digests SET sent = sent + $1 WHERE id = $2",
                "failed" => "UPDATE digests SET failed = failed + $1 WHERE id = $2",
                "skipped" => "UPDATE digests SET skipped = skipped + $1 WHERE id = $2",
                "cancelled" => "UPDATE digests SET cancelled = cancelled + $1 WHERE id = $2",
                "in_flight" => "UPDATE digests SET in_flight = in_flight + $1 WHERE id = $2",
                "rejected" => "UPDATE digests SET rejected = rejected + $1 WHERE id = $2",
                "hard_bounces" => "UPDATE digests SET hard_bounces = hard_bounces + $1 WHERE id = $2",
                "complaints" => "UPDATE digests SET complaints = complaints + $1 WHERE id = $2",
                other => anyhow::bail!("no counter {other}"),
            };
            sqlx::query(q)
                .bind(n)
                .bind(digest)
                .execute(&mut *conn)
                .await
                .context("cannot update a send's counters")?;
            Ok(())
        }

        /// Adds each digest's change in `delta` to `counter`.
        pub(crate) async fn count_all(
            conn: &mut Conn,
            counter: &'static str,
            delta: &CounterDelta,
        ) -> anyhow::Result<()> {
            for (digest, n) in delta.iter() {
                Db::count(conn, digest, counter, n).await?;
            }
            Ok(())
        }

        /// Several of the sends' counters moved at once: one statement per send, however
        /// many counters moved (the ledger writer's batches touch two or three each).
        pub(crate) async fn count_together(
            conn: &mut Conn,
            deltas: &[(&'static str, &CounterDelta)],
        ) -> anyhow::Result<()> {
            const COUNTERS: [&str; 8] = [
                "sent",
                "failed",
                "skipped",
                "cancelled",
                "in_flight",
                "rejected",
                "hard_bounces",
                "complaints",
            ];
            let mut per: std::collections::BTreeMap<i64, Vec<(&'static str, i64)>> =
                Default::default();
            for (counter, delta) in deltas {
                anyhow::ensure!(COUNTERS.contains(counter), "no counter {counter}");
                for (digest, n) in delta.iter() {
                    per.entry(digest).or_default().push((counter, n));
                }
            }
            for (digest, moved) in per {
                let mut qb = sqlx::QueryBuilder::<DB>::new("UPDATE digests SET ");
                let mut sep = qb.separated(", ");
                for (counter, n) in moved {
                    // `counter` is one of COUNTERS, never input.
                    sep.push(format!("{counter} = {counter} + "))
                        .push_bind_unseparated(n);
                }
                qb.push(" WHERE id = ").push_bind(digest);
                qb.build()
                    .execute(&mut *conn)
                    .await
                    .context("cannot update a send's counters")?;
            }
            Ok(())
        }

    }
}
