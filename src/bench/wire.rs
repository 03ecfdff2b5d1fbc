//! The wire-speed comparison: one digest to N readers through `smtp-sink`, then `smtp-source`
//! pushing messages of the same size through the same sink, and the sectioned and DKIM runs.

use std::{process::Command, time::Instant};

use anyhow::Context;
use chrono::Utc;

use super::{
    args::BenchArgs,
    measure::{SendRun, cpu_times, make_digest, measure_send, sectioned_send},
    reads::{console_ms, search_ms},
    setup::{
        BenchDb, bench_articles, bench_toml, dkim_config, find_tool, free_port, import_readers,
        sections_config,
    },
    sink::PostfixSink,
};
use crate::{app::App, config::Settings, delivery::message::Personal};

/// The sender's CPU per message without DKIM (with it: this plus one signature).
const TARGET_CPU_MS: f64 = 0.12;
/// The sending phase's peak RSS with DKIM.
const TARGET_RSS_MB: f64 = 64.0;
/// The rate against `smtp-source` without DKIM.
const TARGET_RATIO: f64 = 0.95;

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "missed" }
}

pub(super) async fn wire(args: &BenchArgs, db: &BenchDb) -> anyhow::Result<()> {
    let n = args.subscribers;
    let source_bin = find_tool("smtp-source")?;
    let port = free_port()?;
    let sink = PostfixSink::start(port)?;
    let toml = bench_toml(&db.url, port, args.sessions);
    let dkim_toml = if args.dkim {
        dkim_config(db.dir.path(), args.dkim_ed25519)?
    } else {
        String::new()
    };
    let sections_toml = args.sections.map(sections_config).unwrap_or_default();
    let settings = Settings::from_toml_layers(&[&toml, &dkim_toml, &sections_toml])?;
    let app = App::new(settings).await?;
    for a in bench_articles() {
        app.add_article(a).await?;
    }
    let import_secs = import_readers(&app, n).await?;
    let (search_worst, part_worst) = search_ms(&app, n).await?;
    let (dashboard_ms, audience_ms) = console_ms(&app).await?;
    if args.reads_only {
        println!(
            "nashra bench (reads only): {n} subscribers on {}",
            app.store.engine()
        );
        println!(
            "  import            {n} subscribers in {import_secs:.2} s ({:.0}/s)",
            n as f64 / import_secs
        );
        println!(
            "  address search    {search_worst:.1} ms, the slowest of 5 (start of an address)"
        );
        println!(
            "  reader search     {part_worst:.1} ms, the slowest of 6 (part of an address or a name)"
        );
        println!("  console           dashboard counts {dashboard_ms:.1} ms");
        println!("  send audience     {audience_ms:.1} ms (who «أرسل الآن» reaches, by edition)");
        return Ok(());
    }

    let (id, recipients, create_secs) = make_digest(&app).await?;
    let digest = app.store.digest(id).await?.context("digest")?;
    // One message exactly as the dispatcher will build it, for smtp-source's size.
    let sample = {
        let prepared = app.dispatcher.prepared(id, 0, None).await?;
        let url = app
            .settings
            .public_url(&format!("/unsubscribe/{}", app.tokens.unsubscribe(1)));
        let personal = Personal {
            to: "reader1@bench.example.com",
            unsubscribe_url: Some(&url),
            unsubscribe_mailto: None,
            name: "",
            preferences_url: None,
            click: "",
            date: Utc::now(),
        };
        prepared
            .template
            .build(&personal, &prepared.template.new_message_id())
    };

    // The send: only this phase counts for rate, CPU and peak RSS.
    let SendRun {
        secs: send_secs,
        user,
        sys,
        mut progress_ms,
        peak_kb,
    } = measure_send(&app, id, recipients).await?;
    let cpu = user + sys;
    // Sections: every reader chooses one; a second digest, rendered once per section.
    let sectioned = match args.sections {
        Some(k) => Some(sectioned_send(&app, k, n).await?),
        None => None,
    };

    // Reference: smtp-source, same size, same sessions, same sink. This machine is shared and
    // noisy, so it runs twice and the faster run counts (the ratio is then a lower bound).
    let m = args.reference_messages.unwrap_or(n.min(50_000));
    let mut ref_secs = f64::MAX;
    for _ in 0..2 {
        let t = Instant::now();
        let out = Command::new(&source_bin)
            .args([
                "-s",
                &args.sessions.to_string(),
                "-l",
                &sample.len().to_string(),
                "-m",
                &m.to_string(),
                "-f",
                "newsletter@example.org",
                "-t",
                "reader@bench.example.com",
                &format!("127.0.0.1:{port}"),
            ])
            .output()
            .context("cannot run smtp-source")?;
        ref_secs = ref_secs.min(t.elapsed().as_secs_f64());
        anyhow::ensure!(
            out.status.success(),
            "smtp-source failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    drop(sink);

    let rate = n as f64 / send_secs;
    let ref_rate = m as f64 / ref_secs;
    let cpu_ms = cpu.as_secs_f64() * 1000.0 / n as f64;
    println!(
        "nashra bench: {n} subscribers on {}, {} sessions, smtp-sink on 127.0.0.1:{port}",
        app.store.engine(),
        args.sessions
    );
    println!(
        "  digest            10 articles, {:.1} KB HTML, {:.1} KB per message",
        digest.html.len() as f64 / 1024.0,
        sample.len() as f64 / 1024.0
    );
    println!(
        "  import            {n} subscribers in {import_secs:.2} s ({:.0}/s)",
        n as f64 / import_secs
    );
    println!(
        "  create digest     {create_secs:.3} s (audience of {recipients} fixed in the ledger)"
    );
    println!("  address search    {search_worst:.1} ms, the slowest of 5 (start of an address)");
    println!(
        "  reader search     {part_worst:.1} ms, the slowest of 6 (part of an address or a name)"
    );
    println!("  console           dashboard counts {dashboard_ms:.1} ms");
    println!("  send audience     {audience_ms:.1} ms (who «أرسل الآن» reaches, by edition)");
    progress_ms.sort_by(f64::total_cmp);
    if let (Some(mid), Some(max)) = (progress_ms.get(progress_ms.len() / 2), progress_ms.last()) {
        println!(
            "  progress read     {mid:.1} ms median, {max:.1} ms max, over {} reads during the send (GET /api/sends/{{id}})",
            progress_ms.len()
        );
    }
    println!("  send              {send_secs:.2} s  {rate:.0} msg/s");
    println!(
        "  smtp-source       {m} msgs in {ref_secs:.2} s  {ref_rate:.0} msg/s (same size, same sessions, same sink; faster of 2 runs)"
    );
    println!("  ratio             {:.2} × smtp-source", rate / ref_rate);
    println!(
        "  CPU per message   {cpu_ms:.3} ms (user {:.3} + sys {:.3}; the sender's CPU during the send / N)",
        user.as_secs_f64() * 1000.0 / n as f64,
        sys.as_secs_f64() * 1000.0 / n as f64
    );
    if let Some(signer) = app.mailer.signer.clone() {
        // One signature alone, on the same message: what DKIM adds per message at best.
        let (u0, s0) = cpu_times();
        let rounds = 2000;
        for _ in 0..rounds {
            std::hint::black_box(signer.sign(&sample, 0));
        }
        let (u1, s1) = cpu_times();
        let one = ((u1 - u0) + (s1 - s0)).as_secs_f64() * 1000.0 / rounds as f64;
        // The signature itself: the same keys over a message with no body to hash.
        let tiny = b"From: a@example.org\r\nTo: b@example.org\r\n\r\n";
        let (u0, s0) = cpu_times();
        for _ in 0..rounds {
            std::hint::black_box(signer.sign(tiny, 0));
        }
        let (u1, s1) = cpu_times();
        let bare = ((u1 - u0) + (s1 - s0)).as_secs_f64() * 1000.0 / rounds as f64;
        println!(
            "  DKIM              {} signature(s) a message; signing alone {one:.3} ms CPU a message (mean of {rounds}), of which the signature operation {bare:.3} ms; the rest of the message {:.3} ms",
            signer.keys().len(),
            cpu_ms - one
        );
        println!(
            "  DKIM vs target    {cpu_ms:.3} ms ≤ {TARGET_CPU_MS} ms + {bare:.3} ms (one signature) = {:.3} ms: {}",
            TARGET_CPU_MS + bare,
            met(cpu_ms <= TARGET_CPU_MS + bare)
        );
    }
    let rss_mb = peak_kb as f64 / 1024.0;
    println!("  peak RSS (send)   {rss_mb:.1} MB");
    if app.mailer.signer.is_some() {
        println!(
            "  RSS vs target     {rss_mb:.1} MB ≤ {TARGET_RSS_MB} MB with DKIM: {}",
            met(rss_mb <= TARGET_RSS_MB)
        );
    } else {
        println!(
            "  vs targets        CPU {cpu_ms:.3} ms ≤ {TARGET_CPU_MS} ms: {}; rate {:.2} ≥ {TARGET_RATIO} × smtp-source: {}",
            met(cpu_ms <= TARGET_CPU_MS),
            rate / ref_rate,
            met(rate / ref_rate >= TARGET_RATIO)
        );
    }
    if let Some((k, create, run)) = sectioned {
        let ms = (run.user + run.sys).as_secs_f64() * 1000.0 / n as f64;
        println!(
            "  sections          {k} sections, each reader in one, 10 new articles each: digest and {k} editions made in {create:.3} s; sent in {:.2} s  {:.0} msg/s",
            run.secs,
            n as f64 / run.secs
        );
        println!(
            "  sections vs one   CPU per message {ms:.3} ms against {cpu_ms:.3} ms: {:.2} × (target ≤ 1.10: {})",
            ms / cpu_ms,
            if ms <= cpu_ms * 1.10 { "met" } else { "missed" }
        );
    }
    Ok(())
}
