//! migrations/sqlite and migrations/postgres describe the same store: the same tables, the
//! same columns, the same unique keys. Indexes are each engine's own, and so is SQLite's
//! reader search (an FTS5 virtual table and its shadow tables, where PostgreSQL has trigram
//! GIN indexes): only ordinary tables are compared.

use std::collections::{BTreeMap, BTreeSet};

use sqlx::Connection;

use crate::helpers::{Engine, TestPlace};

type Schema = BTreeMap<String, (BTreeSet<String>, BTreeSet<Vec<String>>)>;

const NOT_OURS: [&str; 3] = ["_sqlx_migrations", "sqlite_sequence", "sqlite_schema"];

async fn sqlite_schema(url: &str) -> Schema {
    nashra::store::Store::connect(url).await.unwrap();
    let mut c = sqlx::SqliteConnection::connect(url).await.unwrap();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM pragma_table_list WHERE schema = 'main' AND type = 'table' ORDER BY name",
    )
    .fetch_all(&mut c)
    .await
    .unwrap();
    let mut schema = Schema::new();
    for t in tables
        .into_iter()
        .filter(|t| !NOT_OURS.contains(&t.as_str()))
    {
        let cols: Vec<(String, i64)> =
            sqlx::query_as("SELECT name, pk FROM pragma_table_info($1) ORDER BY cid")
                .bind(&t)
                .fetch_all(&mut c)
                .await
                .unwrap();
        let mut keys: BTreeSet<Vec<String>> = BTreeSet::new();
        let mut pk: Vec<String> = cols
            .iter()
            .filter(|(_, pk)| *pk > 0)
            .map(|(n, _)| n.clone())
            .collect();
        pk.sort();
        if !pk.is_empty() {
            keys.insert(pk);
        }
        let indexes: Vec<(String, i64)> =
            sqlx::query_as("SELECT name, \"unique\" FROM pragma_index_list($1)")
                .bind(&t)
                .fetch_all(&mut c)
                .await
                .unwrap();
        for (idx, unique) in indexes {
            if unique == 0 {
                continue;
            }
            let mut key: Vec<String> =
                sqlx::query_scalar("SELECT name FROM pragma_index_info($1) ORDER BY seqno")
                    .bind(&idx)
                    .fetch_all(&mut c)
                    .await
                    .unwrap();
            key.sort();
            keys.insert(key);
        }
        schema.insert(t, (cols.into_iter().map(|(n, _)| n).collect(), keys));
    }
    schema
}

async fn postgres_schema(url: &str) -> Schema {
    nashra::store::Store::connect(url).await.unwrap();
    let mut c = sqlx::PgConnection::connect(url).await.unwrap();
    let cols: Vec<(String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text FROM information_schema.columns
         WHERE table_schema = 'public' ORDER BY table_name, ordinal_position",
    )
    .fetch_all(&mut c)
    .await
    .unwrap();
    let mut schema = Schema::new();
    for (t, col) in cols {
        if NOT_OURS.contains(&t.as_str()) {
            continue;
        }
        schema.entry(t).or_default().0.insert(col);
    }
    let keys: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT t.relname::text, i.relname::text, a.attname::text
         FROM pg_index x
         JOIN pg_class t ON t.oid = x.indrelid
         JOIN pg_class i ON i.oid = x.indexrelid
         JOIN pg_namespace n ON n.oid = t.relnamespace AND n.nspname = 'public'
         JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = ANY (x.indkey)
         WHERE x.indisunique",
    )
    .fetch_all(&mut c)
    .await
    .unwrap();
    let mut by_index: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for (t, idx, col) in keys {
        by_index.entry((t, idx)).or_default().push(col);
    }
    for ((t, _), mut key) in by_index {
        if let Some(entry) = schema.get_mut(&t) {
            key.sort();
            entry.1.insert(key);
        }
    }
    schema
}

#[tokio::test]
#[cfg_attr(
    not(pg_tests),
    ignore = "NASHRA_TEST_POSTGRES_URL is not set: no PostgreSQL server to compare with"
)]
async fn both_engines_have_the_same_tables_columns_and_unique_keys() {
    let lite = TestPlace::new(Engine::Sqlite).await;
    let pg = TestPlace::new(Engine::Postgres).await;
    let a = sqlite_schema(&lite.db_url).await;
    let b = postgres_schema(&pg.db_url).await;
    assert!(a.len() >= 10, "{a:#?}");
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "the same tables"
    );
    for (table, (cols, keys)) in &a {
        let (pcols, pkeys) = &b[table];
        assert_eq!(cols, pcols, "columns of {table}");
        assert_eq!(keys, pkeys, "unique keys of {table}");
    }
}
