//! Where one test keeps its data: the engine it runs on, a temporary directory and a fresh
//! database (a SQLite file, or a PostgreSQL database of its own that is dropped afterwards).
//! Kept apart from the app so a restart, a second process or a CLI run can reuse the same data.

use std::path::Path;

use sqlx::Connection;

/// The database engine a test runs on. `both_engines!` hands each copy of a test its engine;
/// a test about one engine names it. There is no default: a test that spawns an app says where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// Where one test keeps its data: a directory (outbox, SQLite file, config files) and, on
/// PostgreSQL, a database of its own, dropped with this.
pub struct TestPlace {
    dir: tempfile::TempDir,
    pub db_url: String,
    pg: Option<(String, String)>,
}

impl TestPlace {
    pub async fn new(engine: Engine) -> TestPlace {
        let dir = tempfile::tempdir().unwrap();
        match engine {
            Engine::Sqlite => TestPlace {
                db_url: format!("sqlite://{}", dir.path().join("nashra.db").display()),
                dir,
                pg: None,
            },
            Engine::Postgres => {
                let admin = std::env::var("NASHRA_TEST_POSTGRES_URL")
                    .expect("NASHRA_TEST_POSTGRES_URL names a PostgreSQL server for these tests");
                let name = format!("nashra_t_{}", uuid::Uuid::new_v4().simple());
                let mut c = sqlx::PgConnection::connect(&admin).await.unwrap();
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
                    .execute(&mut c)
                    .await
                    .unwrap();
                let mut url = url::Url::parse(&admin).unwrap();
                url.set_path(&format!("/{name}"));
                TestPlace {
                    db_url: url.to_string(),
                    dir,
                    pg: Some((admin, name)),
                }
            }
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Runs raw SQL on this test's database (for what no API can do, such as injecting a
    /// fault).
    pub async fn exec(&self, sql: &str) {
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        match &self.pg {
            None => {
                let mut c = sqlx::SqliteConnection::connect(&self.db_url).await.unwrap();
                sqlx::query(sql).execute(&mut c).await.unwrap();
            }
            Some(_) => {
                let mut c = sqlx::PgConnection::connect(&self.db_url).await.unwrap();
                sqlx::query(sql).execute(&mut c).await.unwrap();
            }
        }
    }

    /// One integer from raw SQL.
    pub async fn scalar(&self, sql: &str) -> i64 {
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        match &self.pg {
            None => {
                let mut c = sqlx::SqliteConnection::connect(&self.db_url).await.unwrap();
                sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
            }
            Some(_) => {
                let mut c = sqlx::PgConnection::connect(&self.db_url).await.unwrap();
                sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
            }
        }
    }
}

impl TestPlace {
    /// A column of text from raw SQL.
    pub async fn strings(&self, sql: &str) -> Vec<String> {
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        match &self.pg {
            None => {
                let mut c = sqlx::SqliteConnection::connect(&self.db_url).await.unwrap();
                sqlx::query_scalar(sql).fetch_all(&mut c).await.unwrap()
            }
            Some(_) => {
                let mut c = sqlx::PgConnection::connect(&self.db_url).await.unwrap();
                sqlx::query_scalar(sql).fetch_all(&mut c).await.unwrap()
            }
        }
    }
}

impl Drop for TestPlace {
    fn drop(&mut self) {
        let Some((admin, name)) = self.pg.take() else {
            return;
        };
        // Drop runs outside async: a thread of its own with a small runtime.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok(mut c) = sqlx::PgConnection::connect(&admin).await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                    )))
                    .execute(&mut c)
                    .await;
                }
            })
        })
        .join();
    }
}
