//! The reads a newsroom waits for while a send runs: the console's dashboard and reader
//! lists, and reader searches.

use std::time::Instant;

use crate::app::App;

/// The console's dashboard reads at this size: readers by status, a month of sign-ups and
/// departures.
/// The console's reads at this size: its dashboard (milliseconds), and who a send made now
/// would reach by edition, as the preview's «أرسل الآن» counts it (milliseconds).
pub(super) async fn console_ms(app: &App) -> anyhow::Result<(f64, f64)> {
    let t = Instant::now();
    app.store.status_counts().await?;
    let statuses = t.elapsed().as_secs_f64() * 1000.0;
    let t = Instant::now();
    app.store
        .consent_counts(crate::store::now_ms() - 30 * 86_400_000, 15 * 60 * 1000)
        .await?;
    let chart = t.elapsed().as_secs_f64() * 1000.0;
    println!(
        "  (dashboard: readers by status {statuses:.1} ms, a month of sign-ups {chart:.1} ms)"
    );
    let schedule = app.settings.schedule(None)?;
    let t = Instant::now();
    app.send_audience(schedule).await?;
    let audience = t.elapsed().as_secs_f64() * 1000.0;
    Ok((statuses + chart, audience))
}

/// One page of the console's reader list for `q`, as the console asks for it (50 rows and
/// the total up to 10,001): milliseconds.
pub(super) async fn list_ms(app: &App, q: Option<&str>) -> anyhow::Result<f64> {
    let filter = crate::store::ReaderFilter {
        q: q.map(str::to_owned),
        ..Default::default()
    };
    let t = Instant::now();
    app.store.list_subscribers(&filter, 1, 50).await?;
    Ok(t.elapsed().as_secs_f64() * 1000.0)
}

/// Reader searches, each timed once and printed: the start of an address (the one reader, a
/// ninth of them, all of them, two characters, the first page without a search), then part
/// of an address or a name (every reader's domain, one reader's digits, an eighth's name,
/// texts nobody has). Returns the slowest of each group.
pub(super) async fn search_ms(app: &App, n: usize) -> anyhow::Result<(f64, f64)> {
    let one = format!("reader{}@", n / 2);
    let prefix = [
        Some(one.as_str()),
        Some("reader1"),
        Some("reader"),
        Some("re"),
        None,
    ];
    let digits = format!("{}@", n / 2);
    let part = [
        "bench",
        "@bench.example.com",
        digits.as_str(),
        "عمر",
        "zeinab",
        "زينب الكاظمي",
    ];
    let mut line = String::new();
    let mut worst_prefix: f64 = 0.0;
    for q in prefix {
        let ms = list_ms(app, q).await?;
        worst_prefix = worst_prefix.max(ms);
        line.push_str(&format!(" `{}` {ms:.1},", q.unwrap_or("")));
    }
    println!("  (start of an address, ms:{})", line.trim_end_matches(','));
    line.clear();
    let mut worst_part: f64 = 0.0;
    for q in part {
        let ms = list_ms(app, Some(q)).await?;
        worst_part = worst_part.max(ms);
        line.push_str(&format!(" `{q}` {ms:.1},"));
    }
    println!(
        "  (part of an address or a name, ms:{})",
        line.trim_end_matches(',')
    );
    Ok((worst_prefix, worst_part))
}
