//! What a measurement stands on: the benchmark's own database, its configuration, its readers
//! and articles, and the tools and ports it needs.

use std::{
    path::{Path, PathBuf},
    time::Instant,
};

use anyhow::{Context, bail};

use crate::{
    app::App,
    domain::{SubscriberEmail, SubscriberName},
    feeds,
    store::NewArticle,
};

/// The benchmark's own database: a temporary SQLite file, or a fresh database on a
/// PostgreSQL server, dropped when this is (unless kept).
pub(super) struct BenchDb {
    pub(super) url: String,
    pub(super) dir: tempfile::TempDir,
    pub(super) pg: Option<(String, String)>,
    pub(super) keep: bool,
}

impl BenchDb {
    pub(super) async fn new(server: Option<&str>, keep: bool) -> anyhow::Result<BenchDb> {
        let dir = tempfile::Builder::new().prefix("nashra-bench-").tempdir()?;
        let Some(server) = server.filter(|s| s.starts_with("postgres")) else {
            return Ok(BenchDb {
                url: format!("sqlite://{}", dir.path().join("bench.db").display()),
                dir,
                pg: None,
                keep,
            });
        };
        use sqlx::Connection;
        let name = format!("nashra_bench_{}", uuid::Uuid::new_v4().simple());
        let mut c = sqlx::PgConnection::connect(server)
            .await
            .context("cannot connect to --database")?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut c)
            .await
            .context("cannot create the benchmark's database")?;
        let mut url = url::Url::parse(server).context("--database is not a URL")?;
        url.set_path(&format!("/{name}"));
        Ok(BenchDb {
            url: url.to_string(),
            dir,
            pg: Some((server.to_owned(), name)),
            keep,
        })
    }

    pub(super) async fn drop_database(&mut self) {
        if self.keep {
            return;
        }
        if let Some((server, name)) = self.pg.take() {
            use sqlx::Connection;
            if let Ok(mut c) = sqlx::PgConnection::connect(&server).await {
                let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                )))
                .execute(&mut c)
                .await;
            }
        }
    }
}

/// The benchmark's configuration over `db`, sending to 127.0.0.1:`port`.
pub(super) fn bench_toml(db: &str, port: u16, sessions: usize) -> String {
    format!(
        r#"
[server]
public_url = "https://news.example.org"
[database]
url = "{db}"
[delivery]
transport = "smtp"
concurrency = {sessions}
lease = "10m"
[smtp]
host = "127.0.0.1"
port = {port}
[newsletter]
# Longer excerpts than the default so the digest is "real-sized": about 50 KB of HTML.
excerpt_chars = 1400
[security]
secret = "bench-secret-0123456789-0123456789-0123456789"
admin_token = "bench-admin-token-0123456789"
"#
    )
}

/// Imports `n` confirmed readers in chunks (the benchmark's own memory stays flat too).
pub(super) async fn import_readers(app: &App, n: usize) -> anyhow::Result<f64> {
    let t = Instant::now();
    let chunk = 50_000;
    let mut made = 0;
    while made < n {
        let rows: Vec<(SubscriberEmail, SubscriberName)> = (made..(made + chunk).min(n))
            .map(|i| {
                (
                    SubscriberEmail::parse(&format!("reader{i}@bench.example.com")).expect("valid"),
                    SubscriberName::parse(NAMES[i % NAMES.len()]).expect("a valid name"),
                )
            })
            .collect();
        made += rows.len();
        app.store.import(&rows, true, "bench").await?;
    }
    Ok(t.elapsed().as_secs_f64())
}

/// Time zones readers of an Arabic newsroom live in, from Detroit to Kolkata.
pub(super) const ZONES: [&str; 7] = [
    "America/Detroit",
    "Africa/Casablanca",
    "Europe/Berlin",
    "Africa/Cairo",
    "Asia/Baghdad",
    "Asia/Dubai",
    "Asia/Kolkata",
];

/// Puts the readers in [`ZONES`] by turn (`id % 7`), and with `alerts` has every one take
/// alerts: seconds taken. What a reader chooses on the preferences page, all at once; the
/// store has no door for that, so the bench writes it over a connection of its own (as
/// the tests do), then lets PostgreSQL vacuum the rows the update left and count the new.
pub(super) async fn spread_zones(db: &BenchDb, alerts: bool) -> anyhow::Result<f64> {
    use sqlx::Connection;
    let t = Instant::now();
    let sql = "UPDATE subscribers SET timezone = $1, alerts = $2 WHERE id % $3 = $4";
    macro_rules! spread {
        ($conn:expr) => {{
            let mut c = $conn;
            for (i, zone) in ZONES.iter().enumerate() {
                sqlx::query(sql)
                    .bind(*zone)
                    .bind(alerts as i64)
                    .bind(ZONES.len() as i64)
                    .bind(i as i64)
                    .execute(&mut c)
                    .await
                    .context("cannot spread the readers over time zones")?;
            }
            c
        }};
    }
    if db.pg.is_some() {
        let mut c = spread!(sqlx::PgConnection::connect(&db.url).await?);
        sqlx::query("VACUUM ANALYZE subscribers")
            .execute(&mut c)
            .await?;
    } else {
        spread!(sqlx::SqliteConnection::connect(&db.url).await?);
    }
    Ok(t.elapsed().as_secs_f64())
}

/// Readers' names, in turn.
pub(super) const NAMES: [&str; 8] = ["سارة", "عمر", "ليلى", "أحمد", "مريم", "علي", "نور", "يوسف"];

/// Ten articles of realistic length, from the seed article's paragraphs.
pub(super) fn bench_articles() -> Vec<NewArticle> {
    let seed = include_str!("../../samples/feed.xml");
    let base = feeds::parse_feed(seed.as_bytes(), "bench").unwrap_or_default();
    let longest = base
        .iter()
        .map(|a| &a.content_html)
        .max_by_key(|c| c.len())
        .cloned()
        .unwrap_or_default();
    (0..10)
        .map(|i| {
            let b = &base[i % base.len().max(1)];
            NewArticle {
                guid: Some(format!("bench-{i}")),
                url: format!("{}?bench={i}", b.url),
                title: format!("{} ({})", b.title, i + 1),
                image: format!("https://example.org/wp-content/uploads/2020/06/bench-{i}.jpg"),
                // The seed article's full text, so excerpts can run to `excerpt_chars`.
                summary: String::new(),
                content_html: longest.clone(),
                source: "bench".into(),
                ..b.clone()
            }
        })
        .collect()
}

/// `k` sections, `s1` … `sk`, each with its own category; ten articles a digest.
pub(super) fn sections_config(k: u32) -> String {
    let mut toml = String::from(
        "[[schedules]]\nname = \"daily\"\ncron = \"0 7 * * *\"\ntimezone = \"Asia/Baghdad\"\nsubject = \"نشرة الحل نت — {{ date }}\"\nmax_articles = 10\n",
    );
    for i in 1..=k {
        toml.push_str(&format!(
            "[[sections]]\nslug = \"s{i}\"\nname = \"قسم {i}\"\ncategories = [\"s{i}\"]\n"
        ));
    }
    toml
}

/// A fresh RSA-2048 key (and an Ed25519 one) for the benchmark's sends.
pub(super) fn dkim_config(dir: &std::path::Path, ed25519: bool) -> anyhow::Result<String> {
    let mut toml = String::new();
    let mut algs = vec![(crate::dkim::Algorithm::RsaSha256, "rsa")];
    if ed25519 {
        algs.push((crate::dkim::Algorithm::Ed25519Sha256, "ed"));
    }
    for (alg, name) in algs {
        let path = dir.join(format!("{name}.pem"));
        std::fs::write(&path, crate::dkim::generate(alg)?)?;
        toml.push_str(&format!(
            "[[dkim]]\ndomain = \"example.org\"\nselector = \"{name}\"\nprivate_key_file = \"{}\"\n",
            path.display()
        ));
    }
    Ok(toml)
}

pub(super) fn find_tool(name: &str) -> anyhow::Result<PathBuf> {
    for dir in std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .chain(["/usr/sbin", "/usr/lib/postfix/sbin"])
    {
        let p = Path::new(dir).join(name);
        if p.is_file() {
            return Ok(p);
        }
    }
    bail!(
        "`{name}` not found: install Postfix's tools without starting a mail system:\n  \
         echo 'postfix postfix/main_mailer_type select No configuration' | debconf-set-selections\n  \
         DEBIAN_FRONTEND=noninteractive apt-get install -y postfix"
    )
}

pub(super) fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}
