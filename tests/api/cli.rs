//! The command line as an operator uses it: bad configuration, import/export, preview, send.

use std::process::{Command, Output};

use crate::helpers::{
    TestPlace,
    dns::{TestDns, Zone},
    smtp::TestSmtp,
    test_toml,
};

fn nashra(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_nashra"));
    c.current_dir(dir).args(args).env("RUST_LOG", "warn");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("nashra runs")
}

fn text(o: &[u8]) -> String {
    String::from_utf8_lossy(o).into_owned()
}

#[test]
fn bad_configuration_exits_non_zero_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[("NASHRA__DELIVERY__TRANSPORT", "pigeon")],
            "delivery.transport",
        ),
        (
            &[("NASHRA__DELIVERY__TRANSPORT", "smtp")],
            "security.secret",
        ),
        (&[("NASHRA__SMTP__PORT", "not-a-port")], "smtp.port"),
        (
            &[("NASHRA__SERVER__TRUSTED_PROXIES", "[\"10.0.0.0/33\"]")],
            "server.trusted_proxies",
        ),
        (
            &[("NASHRA__DELIVERY__RETRY_AFTER", "soon")],
            "delivery.retry_after",
        ),
        (
            &[(
                "NASHRA__SCHEDULES",
                "[{name=\"x\",cron=\"0 7 * * 8\",timezone=\"UTC\",subject=\"s\"}]",
            )],
            "cron",
        ),
        (
            &[(
                "NASHRA__SCHEDULES",
                "[{name=\"x\",cron=\"0 7 * * 1\",timezone=\"Asia/Bagdad\",subject=\"s\"}]",
            )],
            "timezone",
        ),
    ];
    for (env, key) in cases {
        let out = nashra(dir.path(), &["migrate"], env);
        assert!(!out.status.success(), "{env:?} should fail");
        let err = text(&out.stderr);
        assert!(err.contains(key), "{env:?}: {err}");
    }
    let out = nashra(dir.path(), &["--config", "missing.toml", "migrate"], &[]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("missing.toml"));
}

/// Issue 15, item 23: a misspelt or not-yet-built key stops the process, named with the
/// nearest known one, whether it came from a file or from the environment.
#[test]
fn an_unknown_key_stops_the_process_naming_the_nearest_known_one() {
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, body: &str| {
        std::fs::write(dir.path().join(name), body).unwrap();
        name.to_owned()
    };
    // (config file, environment, what the error must say)
    type Case<'a> = (String, Vec<(&'a str, &'a str)>, Vec<&'a str>);
    let cases: Vec<Case> = vec![
        (
            file("delivry.toml", "[delivry]\nconcurrency = 3\n"),
            vec![],
            vec![
                "unknown section `delivry`",
                "delivry.toml",
                "did you mean `delivery`?",
            ],
        ),
        (
            file("hots.toml", "[smtp]\nhots = \"relay.example.org\"\n"),
            vec![],
            vec!["unknown key `smtp.hots`", "did you mean `smtp.host`?"],
        ),
        (
            file(
                "two.toml",
                "[server]\npublic_url = \"http://127.0.0.1:8080\"\nsignups_per_huor = 5\n[newsletter]\nfrom_name = \"x\"\n[[schedules]]\nname = \"w\"\ncron = \"0 7 * * 1\"\ntimezone = \"UTC\"\nsubject = \"s\"\nmax_article = 5\n",
            ),
            vec![],
            vec![
                "`server.signups_per_hour`?",
                "unknown key `newsletter.from_name`",
                "unknown key `schedules[0].max_article`",
                "`schedules[0].max_articles`?",
            ],
        ),
        (
            String::new(),
            vec![("NASHRA__DELIVRY__CONCURRENCY", "3")],
            vec![
                "unknown section `delivry`",
                "NASHRA__DELIVRY__CONCURRENCY",
                "did you mean `delivery`?",
            ],
        ),
        (
            String::new(),
            vec![("NASHRA__SMTP__HOTS", "relay.example.org")],
            vec!["`smtp.hots`", "NASHRA__SMTP__HOTS", "`smtp.host`?"],
        ),
        (
            file("guard.toml", "[delivery.guard]\nmin_deliverd = 5\n"),
            vec![],
            vec![
                "`delivery.guard.min_deliverd` in",
                "`delivery.guard.min_delivered`?",
            ],
        ),
    ];
    for (config, env, wanted) in &cases {
        let mut args = vec![];
        if !config.is_empty() {
            args.extend(["--config", config.as_str()]);
        }
        args.push("migrate");
        let out = nashra(dir.path(), &args, env);
        let err = text(&out.stderr);
        assert!(!out.status.success(), "{config} {env:?} should fail: {err}");
        for w in wanted {
            assert!(err.contains(w), "{config} {env:?}: `{w}` not in {err}");
        }
        assert!(
            !dir.path().join("data").exists(),
            "nothing was migrated: {err}"
        );
    }
    // Every configuration file the repository ships still loads.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = nashra(
        dir.path(),
        &[
            "--config",
            root.join("config/default.toml").to_str().unwrap(),
            "migrate",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
}

/// Issue 15, item 4: the published development secrets are refused by every kind of
/// process whenever readers could reach it (https public_url, or a bind beyond loopback),
/// not only by one that sends over smtp.
#[test]
fn no_process_reachable_by_readers_starts_with_the_development_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let https: &[(&str, &str)] = &[
        ("NASHRA__SERVER__PUBLIC_URL", "https://news.example.org"),
        ("NASHRA__SERVER__BIND", "127.0.0.1:0"),
    ];
    let wide: &[(&str, &str)] = &[("NASHRA__SERVER__BIND", "0.0.0.0:0")];
    let own_secret: &[(&str, &str)] = &[(
        "NASHRA__SECURITY__SECRET",
        "an-operator-secret-0123456789-0123456789",
    )];
    let web_only = &["serve", "--no-delivery", "--no-scheduler", "--no-feeds"][..];
    // (arguments, environment, the key the refusal names)
    type Case<'a> = (&'a [&'a str], Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        (web_only, https.to_vec(), "security.secret"),
        (
            &["serve", "--no-delivery"],
            https.to_vec(),
            "security.secret",
        ),
        (&["worker"], https.to_vec(), "security.secret"),
        (&["serve"], wide.to_vec(), "security.secret"),
        (
            web_only,
            [https, own_secret].concat(),
            "security.admin_token",
        ),
    ];
    // Started together: a process that wrongly starts is given 20 s to prove it stays up.
    let mut running: Vec<_> = cases
        .iter()
        .enumerate()
        .map(|(i, (args, env, _))| {
            // A directory each: one SQLite file migrated by two processes at once would fail
            // for a reason of its own.
            let place = dir.path().join(i.to_string());
            std::fs::create_dir(&place).unwrap();
            let mut c = Command::new(env!("CARGO_BIN_EXE_nashra"));
            c.current_dir(place)
                .args(*args)
                .env("RUST_LOG", "warn")
                .envs(env.iter().copied())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped());
            c.spawn().expect("nashra runs")
        })
        .collect();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::time::Instant::now() < deadline
        && running.iter_mut().any(|c| c.try_wait().unwrap().is_none())
    {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let mut started = vec![];
    for ((args, env, key), mut child) in cases.iter().zip(running) {
        if child.try_wait().unwrap().is_none() {
            let _ = child.kill();
            let _ = child.wait();
            started.push(format!("{args:?} {env:?}"));
            continue;
        }
        let out = child.wait_with_output().unwrap();
        let err = text(&out.stderr);
        assert!(!out.status.success(), "{args:?} {env:?}");
        assert!(
            err.contains(key) && err.contains("development value"),
            "{args:?} {env:?}: {err}"
        );
    }
    assert!(
        started.is_empty(),
        "started with the development secrets: {started:?}"
    );
    // On a laptop (loopback, http) the defaults still run as they are: the demo needs them.
    let out = nashra(dir.path(), &["migrate"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // Secrets of one's own are accepted on https.
    let out = nashra(
        dir.path(),
        &["migrate"],
        &[
            https,
            own_secret,
            &[(
                "NASHRA__SECURITY__ADMIN_TOKEN",
                "an-operator-token-0123456789",
            )],
        ]
        .concat(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
}

// Multi-threaded: the SMTP server must keep running while this thread waits on the CLI.
both_engines!(
    multi_thread,
    import_export_preview_and_send_from_the_command_line,
    |engine| async move {
        let smtp = TestSmtp::start().await;
        let dir = TestPlace::new(engine).await;
        let cfg = dir.path().join("nashra.toml");
        std::fs::write(&cfg, test_toml(&dir, smtp.addr)).unwrap();
        let cfg = cfg.to_str().unwrap().to_owned();
        let run = |args: &[&str]| {
            let mut a = vec!["--config", cfg.as_str()];
            a.extend_from_slice(args);
            nashra(dir.path(), &a, &[])
        };

        std::fs::write(
        dir.path().join("in.csv"),
        "email,name\nreader1@example.com,قارئ\n\"reader2@example.com\",\"Last, First\"\nbad@@example.com,x\nREADER1@example.com,dup\n",
    )
    .unwrap();
        let out = run(&["subscribers", "import", "in.csv", "--confirmed"]);
        // A rejected row makes the import fail (issue 15, item 8); the good rows are in.
        assert!(!out.status.success(), "{}", text(&out.stderr));
        assert!(
            text(&out.stdout).contains("2 added, 1 already known, 1 rejected"),
            "{}",
            text(&out.stdout)
        );
        let out = run(&["subscribers", "export"]);
        let csv = text(&out.stdout);
        assert!(csv.starts_with("email,name,status"));
        assert!(
            csv.contains("reader1@example.com,قارئ,confirmed") && csv.contains("\"Last, First\""),
            "{csv}"
        );

        // Issue 6, item 14: an export read back in is the same list, formula-looking addresses
        // included (the export neutralises them for spreadsheets; the import takes that off).
        let other = TestPlace::new(engine).await;
        let other_cfg = other.path().join("nashra.toml");
        std::fs::write(&other_cfg, test_toml(&other, smtp.addr)).unwrap();
        let other_run = |args: &[&str]| {
            let mut a = vec!["--config", other_cfg.to_str().unwrap()];
            a.extend_from_slice(args);
            nashra(other.path(), &a, &[])
        };
        std::fs::write(
            other.path().join("odd.csv"),
            "email\n=1+1@example.com\n-minus@example.com\n",
        )
        .unwrap();
        assert!(
            other_run(&["subscribers", "import", "odd.csv", "--confirmed"])
                .status
                .success()
        );
        let first = text(&other_run(&["subscribers", "export"]).stdout);
        assert!(first.contains("'=1+1@example.com"), "neutralised: {first}");
        let third = TestPlace::new(engine).await;
        std::fs::write(third.path().join("back.csv"), &first).unwrap();
        let third_cfg = third.path().join("nashra.toml");
        std::fs::write(&third_cfg, test_toml(&third, smtp.addr)).unwrap();
        let out = nashra(
            third.path(),
            &[
                "--config",
                third_cfg.to_str().unwrap(),
                "subscribers",
                "import",
                "back.csv",
                "--confirmed",
            ],
            &[],
        );
        assert!(
            text(&out.stdout).contains("2 added, 0 already known, 0 rejected"),
            "{}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        let again = text(
            &nashra(
                third.path(),
                &[
                    "--config",
                    third_cfg.to_str().unwrap(),
                    "subscribers",
                    "export",
                ],
                &[],
            )
            .stdout,
        );
        let emails = |csv: &str| -> Vec<String> {
            csv.lines()
                .skip(1)
                .map(|l| l.split(',').next().unwrap().to_owned())
                .collect()
        };
        assert_eq!(emails(&first), emails(&again), "the same list");
        assert_eq!(
        third
            .scalar(
                "SELECT COUNT(*) FROM subscribers WHERE email IN ('-minus@example.com', '=1+1@example.com')"
            )
            .await,
        2,
        "the addresses themselves"
    );

        // Nothing to preview yet; then a feed file with the sample articles.
        let out = run(&["preview"]);
        assert!(out.status.success());
        assert!(text(&out.stderr).contains("nothing new"));
        let feed = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/feed.xml");
        let out = nashra(
            dir.path(),
            &["--config", &cfg, "ingest"],
            &[(
                "NASHRA__FEEDS",
                &format!("[{{url=\"file://{}\"}}]", feed.display()),
            )],
        );
        assert!(
            text(&out.stdout).contains("5 new articles"),
            "{}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        let out = run(&["preview", "--text"]);
        let t = text(&out.stdout);
        assert!(
            t.contains("نيوزويك: إيران تدفع بغداد نحو موسكو") && !t.contains("<p"),
            "{t}"
        );
        let out = run(&["send", "--dry-run"]);
        assert!(
            text(&out.stdout).contains("to 2 recipients"),
            "{}",
            text(&out.stdout)
        );
        assert_eq!(smtp.count(), 0, "a dry run sends nothing");

        let out = run(&["send"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(
            text(&out.stdout).contains("2 sent, 0 failed"),
            "{}",
            text(&out.stdout)
        );
        assert_eq!(smtp.count(), 2);
        let out = run(&["send"]);
        assert!(
            text(&out.stdout).contains("nothing new"),
            "a second send sends nothing"
        );
        assert_eq!(smtp.count(), 2);
        let out = run(&["sends", "status", "1"]);
        assert!(text(&out.stdout).contains("\"status\": \"done\""));
    }
);

// Issue 15, item 8: a reader is never dropped for their name, and an import that turned
// rows away says so with its exit status and the offending values.
both_engines!(
    an_import_keeps_readers_whose_name_fails_and_fails_when_a_row_is_rejected,
    |engine| async move {
        let dir = TestPlace::new(engine).await;
        let cfg = dir.path().join("nashra.toml");
        std::fs::write(&cfg, test_toml(&dir, "127.0.0.1:25".parse().unwrap())).unwrap();
        let cfg = cfg.to_str().unwrap().to_owned();
        let run = |args: &[&str]| {
            let mut a = vec!["--config", cfg.as_str()];
            a.extend_from_slice(args);
            nashra(dir.path(), &a, &[])
        };
        std::fs::write(
            dir.path().join("names.csv"),
            "email,name\nreader1@example.com,قارئ 1\nreader2@example.com,Ahmed 2\nreader3@example.com,سارة\n",
        )
        .unwrap();
        let out = run(&["subscribers", "import", "names.csv", "--confirmed"]);
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        assert!(
            out.status.success(),
            "no row was rejected: {stdout}{stderr}"
        );
        assert!(
            stdout.contains("3 added, 0 already known, 0 rejected"),
            "{stdout}"
        );
        assert!(stdout.contains("2 imported without a name"), "{stdout}");
        assert!(
            stderr.contains("line 2: name «قارئ 1» left empty")
                && stderr.contains("line 3: name «Ahmed 2» left empty"),
            "{stderr}"
        );
        let export = text(&run(&["subscribers", "export"]).stdout);
        assert!(
            export.contains("reader1@example.com,,confirmed")
                && export.contains("reader2@example.com,,confirmed")
                && export.contains("reader3@example.com,سارة,confirmed"),
            "{export}"
        );

        std::fs::write(
            dir.path().join("bad.csv"),
            "email,name\nnot-an-address,سارة\nreader4@example.com,قارئ\n",
        )
        .unwrap();
        let out = run(&["subscribers", "import", "bad.csv", "--confirmed"]);
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        assert!(
            !out.status.success(),
            "a row was rejected: {stdout}{stderr}"
        );
        assert!(
            stdout.contains("1 added, 0 already known, 1 rejected"),
            "{stdout}"
        );
        assert!(
            stderr.contains("line 2: not imported: `not-an-address` is not an email address"),
            "{stderr}"
        );
        assert!(stderr.contains("1 row was not imported"), "{stderr}");

        std::fs::write(
            dir.path().join("none.csv"),
            "email\nx@@example.com\n@example.com\n",
        )
        .unwrap();
        let out = run(&["subscribers", "import", "none.csv"]);
        assert!(!out.status.success(), "every row was rejected");
        assert!(
            text(&out.stderr).contains("2 rows were not imported"),
            "{}",
            text(&out.stderr)
        );
    }
);

/// `nashra admin …` with the password on stdin (not a terminal).
fn nashra_stdin(dir: &std::path::Path, args: &[&str], stdin: &str) -> Output {
    use std::io::Write;
    let mut c = Command::new(env!("CARGO_BIN_EXE_nashra"))
        .current_dir(dir)
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("nashra runs");
    c.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    c.wait_with_output().unwrap()
}

both_engines!(
    multi_thread,
    the_first_admin_comes_from_the_command_line,
    |engine| async move {
        let smtp = TestSmtp::start().await;
        let dir = TestPlace::new(engine).await;
        let cfg = dir.path().join("nashra.toml");
        std::fs::write(&cfg, test_toml(&dir, smtp.addr)).unwrap();
        let cfg = cfg.to_str().unwrap().to_owned();
        let add = |email: &str, role: &str, password: &str| {
            nashra_stdin(
                dir.path(),
                &["--config", &cfg, "admin", "add", email, "--role", role],
                password,
            )
        };
        let out = add("Chief@Example.org", "owner", "a long enough password\n");
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(
            text(&out.stdout).contains("/admin"),
            "{}",
            text(&out.stdout)
        );
        // Refused, with the reason: a short password, a second account for one address, a
        // role that does not exist.
        let out = add("desk@example.org", "editor", "short\n");
        assert!(!out.status.success());
        assert!(
            text(&out.stderr).contains("at least 12"),
            "{}",
            text(&out.stderr)
        );
        let out = add("chief@example.org", "editor", "another long password\n");
        assert!(!out.status.success());
        assert!(
            text(&out.stderr).contains("exists"),
            "{}",
            text(&out.stderr)
        );
        let out = add("desk@example.org", "admin", "a long enough password\n");
        assert!(!out.status.success());
        assert_eq!(dir.scalar("SELECT COUNT(*) FROM admins").await, 1);
        assert_eq!(
        dir.scalar("SELECT COUNT(*) FROM admins WHERE email = 'chief@example.org' AND role = 'owner' AND password_hash LIKE '$argon2id$%'").await,
        1
    );
        let out = nashra_stdin(
            dir.path(),
            &["--config", &cfg, "admin", "password", "chief@example.org"],
            "a different long password\n",
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert_eq!(dir.scalar("SELECT COUNT(*) FROM audit_log WHERE actor = 'cli' AND action IN ('account_add', 'password_set')").await, 2);
        // A lost authenticator: the command line takes the factor away, audited.
        dir.exec("UPDATE admins SET totp_secret = 'JBSWY3DPEHPK3PXP'")
            .await;
        let out = nashra(
            dir.path(),
            &["--config", &cfg, "admin", "totp-reset", "Chief@example.org"],
            &[],
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert_eq!(
            dir.scalar("SELECT COUNT(*) FROM admins WHERE totp_secret IS NULL")
                .await,
            1
        );
        assert_eq!(
            dir.scalar(
                "SELECT COUNT(*) FROM audit_log WHERE actor = 'cli' AND action = 'totp_reset'"
            )
            .await,
            1
        );
        let out = nashra(
            dir.path(),
            &[
                "--config",
                &cfg,
                "admin",
                "totp-reset",
                "nobody@example.org",
            ],
            &[],
        );
        assert!(!out.status.success());
        assert!(
            text(&out.stderr).contains("no such account"),
            "{}",
            text(&out.stderr)
        );
    }
);

// Multi-threaded: the SMTP server must keep running while this thread waits on the CLI.
both_engines!(
    multi_thread,
    a_dkim_key_the_doctor_and_a_saved_bounce_from_the_command_line,
    |engine| async move {
        use std::os::unix::fs::PermissionsExt;
        let smtp = TestSmtp::start().await;
        let dir = TestPlace::new(engine).await;

        // A key, its DNS record, and no overwriting.
        let out = nashra(
            dir.path(),
            &[
                "dkim",
                "keygen",
                "--domain",
                "example.org",
                "--selector",
                "s1",
                "--out",
                "s1.pem",
            ],
            &[],
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
        let record = text(&out.stdout);
        assert!(
            record.starts_with("s1._domainkey.example.org. IN TXT ( \"v=DKIM1; k=rsa; p=MII"),
            "{record}"
        );
        let key = dir.path().join("s1.pem");
        let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the private key is the owner's only");
        let pem = std::fs::read(&key).unwrap();
        let again = nashra(
            dir.path(),
            &[
                "dkim",
                "keygen",
                "--domain",
                "example.org",
                "--selector",
                "s1",
                "--out",
                "s1.pem",
            ],
            &[],
        );
        assert!(
            !again.status.success(),
            "an existing key is never overwritten"
        );
        assert_eq!(std::fs::read(&key).unwrap(), pem);

        // The doctor: without a key it fails; with it, DKIM is aligned and covers the
        // unsubscribe headers, and the record to publish is the one keygen printed. It looks
        // the records up on a DNS server of the test's (helpers::dns) where they are published.
        let published: String = record.split('"').skip(1).step_by(2).collect();
        let dns = TestDns::start(
            &Zone::new()
                .txt("s1._domainkey.example.org", &published)
                .txt("_dmarc.example.org", "v=DMARC1; p=quarantine")
                .mx("example.org", "mx.example.org", 10),
        )
        .await;
        let nameserver = dns.addr.to_string();
        let base = test_toml(&dir, smtp.addr);
        let cfg = dir.path().join("nashra.toml");
        std::fs::write(&cfg, &base).unwrap();
        let cfg = cfg.to_str().unwrap().to_owned();
        let run = |args: &[&str]| {
            let mut a = vec!["--config", cfg.as_str()];
            a.extend_from_slice(args);
            nashra(dir.path(), &a, &[])
        };
        let out = run(&["doctor", "--nameserver", &nameserver]);
        assert!(!out.status.success());
        assert!(
            text(&out.stdout).contains("FAIL  DKIM"),
            "{}",
            text(&out.stdout)
        );
        std::fs::write(
            &cfg,
            format!(
                "{}\n[[dkim]]\ndomain = \"example.org\"\nselector = \"s1\"\nprivate_key_file = \"{}\"\n\
                 [bounces]\nreturn_path = \"bounces@example.org\"\n",
                base.replace("[delivery]\n", "[delivery]\nbounce_after = 1\n"),
                key.display()
            ),
        )
        .unwrap();
        let out = run(&["doctor", "--nameserver", &nameserver]);
        let report = text(&out.stdout);
        assert!(out.status.success(), "{report}{}", text(&out.stderr));
        assert!(report.contains("PASS  DKIM aligned with From"), "{report}");
        assert!(
            report.contains("PASS  one-click unsubscribe covered by DKIM"),
            "{report}"
        );
        let p = record
            .split("p=")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        assert!(report.contains(p), "the doctor prints the key's record");

        // A signed digest, then its Gmail bounce saved to a file and ingested, twice.
        std::fs::write(dir.path().join("in.csv"), "email\nreader@example.com\n").unwrap();
        assert!(
            run(&["subscribers", "import", "in.csv", "--confirmed"])
                .status
                .success()
        );
        let feed = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/feed.xml");
        let feeds = format!("[{{url=\"file://{}\"}}]", feed.display());
        let ingest = ["--config", cfg.as_str(), "ingest"];
        assert!(
            nashra(dir.path(), &ingest, &[("NASHRA__FEEDS", &feeds)])
                .status
                .success()
        );
        let out = run(&["send"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let m = smtp
            .messages_to("reader@example.com")
            .pop()
            .expect("the digest");
        assert!(text(&m.data).starts_with("DKIM-Signature: v=1; a=rsa-sha256;"));
        let bounce = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/bounces/gmail-hard.eml"),
        )
        .unwrap()
        .replace("{{RETURN_PATH}}", &m.from)
        .replace("{{RECIPIENT}}", "reader@example.com")
        .replace(
            "{{MESSAGE_ID}}",
            crate::helpers::header(&m, "Message-ID").trim(),
        );
        std::fs::write(dir.path().join("bounce.eml"), bounce).unwrap();
        let out = run(&["bounces", "ingest", "bounce.eml"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(
            text(&out.stdout).contains("hard recorded for reader 1, now bounced"),
            "{}",
            text(&out.stdout)
        );
        let out = run(&["bounces", "ingest", "bounce.eml"]);
        assert!(
            text(&out.stdout).contains("already recorded; nothing changed"),
            "{}",
            text(&out.stdout)
        );
        let out = run(&["bounces", "ingest", "missing.eml"]);
        assert!(!out.status.success(), "a file that is not there fails");
        assert_eq!(
            dir.scalar("SELECT COUNT(*) FROM subscribers WHERE status = 'bounced'")
                .await,
            1
        );
    }
);
