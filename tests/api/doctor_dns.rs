//! `nashra doctor` against a real DNS server (dnsmasq on a free port): the records it asks an
//! operator to publish, looked up, with right and wrong ones. The doctor reads no database, so
//! these run once, not per engine. The keys come from `nashra dkim keygen`, as an operator's
//! would.

use std::{
    path::Path,
    process::{Command, Output},
};

use crate::helpers::dns::{TestDns, Zone};

const RELAY: &str = "smtp.example.org";
const RELAY_IP: &str = "192.0.2.25";

fn nashra(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nashra"))
        .current_dir(dir)
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("nashra runs")
}

/// A key made by `nashra dkim keygen` and the TXT record it printed (strings joined).
fn keygen(dir: &Path, selector: &str, algorithm: &str) -> String {
    let out = nashra(
        dir,
        &[
            "dkim",
            "keygen",
            "--domain",
            "example.org",
            "--selector",
            selector,
            "--algorithm",
            algorithm,
            "--out",
            &format!("{selector}.pem"),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    // `s1._domainkey.example.org. IN TXT ( "v=DKIM1; k=rsa; p=MIIB…" "…" )`
    text(&out.stdout)
        .split('"')
        .skip(1)
        .step_by(2)
        .collect::<String>()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A newsroom whose relay is `smtp.example.org`, whose envelope sender is at
/// `bounces.example.org`, signing with an RSA key (s1) and an Ed25519 key (s2).
struct Newsroom {
    dir: tempfile::TempDir,
    rsa: String,
    ed25519: String,
}

impl Newsroom {
    fn new() -> Newsroom {
        let dir = tempfile::tempdir().unwrap();
        let rsa = keygen(dir.path(), "s1", "rsa");
        let ed25519 = keygen(dir.path(), "s2", "ed25519");
        assert!(rsa.len() > 255, "an RSA key's record is split into strings");
        Newsroom { dir, rsa, ed25519 }
    }

    /// The records an operator publishes after reading the doctor.
    fn right_zone(&self) -> Zone {
        self.zone_without_dmarc().txt(
            "_dmarc.example.org",
            "v=DMARC1; p=quarantine; rua=mailto:dmarc@example.org",
        )
    }

    fn zone_without_dmarc(&self) -> Zone {
        Zone::new()
            .host(RELAY, RELAY_IP)
            .txt("bounces.example.org", &format!("v=spf1 a:{RELAY} -all"))
            // The From domain's SPF reaches the relay through an include and an address range.
            .txt("example.org", "v=spf1 include:_spf.example.net ~all")
            .txt("_spf.example.net", "v=spf1 ip4:192.0.2.0/24 -all")
            .txt("s1._domainkey.example.org", &self.rsa)
            .txt("s2._domainkey.example.org", &self.ed25519)
            .mx("bounces.example.org", "mx.example.org", 10)
    }

    /// `nashra doctor`, with `[dns] nameservers` set to `configured` and `--nameserver` to
    /// `given` when there is one.
    fn doctor(&self, configured: &str, given: Option<&TestDns>) -> (bool, String) {
        self.doctor_at("bounces.example.org", configured, given)
    }

    /// The same with the envelope sender at `bounces@<bounce_domain>`.
    fn doctor_at(
        &self,
        bounce_domain: &str,
        configured: &str,
        given: Option<&TestDns>,
    ) -> (bool, String) {
        let config = format!(
            r#"
[database]
url = "sqlite://{dir}/unused.db"
[smtp]
host = "{RELAY}"
tls = "starttls"
[newsletter]
from = "نشرة <newsletter@example.org>"
postal_address = "صندوق بريد 1234، بغداد"
[bounces]
return_path = "bounces@{bounce_domain}"
[dns]
nameservers = ["{configured}"]
[[dkim]]
domain = "example.org"
selector = "s1"
private_key_file = "s1.pem"
[[dkim]]
domain = "example.org"
selector = "s2"
private_key_file = "s2.pem"
"#,
            dir = self.dir.path().display()
        );
        std::fs::write(self.dir.path().join("nashra.toml"), config).unwrap();
        let mut args = vec![
            "--config".to_owned(),
            "nashra.toml".to_owned(),
            "doctor".to_owned(),
        ];
        if let Some(dns) = given {
            args.extend(["--nameserver".to_owned(), dns.addr.to_string()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = nashra(self.dir.path(), &args);
        let report = text(&out.stdout) + &text(&out.stderr);
        (out.status.success(), report)
    }
}

/// A UDP port nothing answers on.
fn silent_nameserver() -> String {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    // Kept open (and never read) for the test's life by leaking it: nothing answers there.
    std::mem::forget(socket);
    addr.to_string()
}

#[tokio::test]
async fn the_doctor_passes_the_records_it_asked_for_as_published() {
    let newsroom = Newsroom::new();
    let dns = TestDns::start(&newsroom.right_zone()).await;
    // `--nameserver` wins over `[dns] nameservers` (which names a server that never answers).
    let (ok, report) = newsroom.doctor(&silent_nameserver(), Some(&dns));
    assert!(ok, "{report}");
    assert!(!report.contains("FAIL"), "{report}");
    for line in [
        "PASS  SPF of the return path (TXT bounces.example.org): covers the relay smtp.example.org (192.0.2.25): a:smtp.example.org",
        "PASS  SPF of the From domain (TXT example.org): covers the relay smtp.example.org (192.0.2.25): include:_spf.example.net in example.org → ip4:192.0.2.0/24 in _spf.example.net",
        "PASS  DKIM key s1 (TXT s1._domainkey.example.org): k=rsa, p= is the public half of the configured private key",
        "PASS  DKIM key s2 (TXT s2._domainkey.example.org): k=ed25519, p= is the public half",
        "PASS  DMARC of the From domain (TXT _dmarc.example.org): p=quarantine; reports to mailto:dmarc@example.org",
        "PASS  MX of the bounce domain (MX bounces.example.org): 10 mx.example.org",
    ] {
        assert!(report.contains(line), "missing «{line}» in\n{report}");
    }
}

#[tokio::test]
async fn the_doctor_fails_naming_each_record_that_is_wrong_or_missing() {
    let newsroom = Newsroom::new();
    // Another key, published under s1 by mistake (an old key, a copy-paste from staging).
    let other = keygen(newsroom.dir.path(), "old", "rsa");
    let zone = Zone::new()
        .host(RELAY, RELAY_IP)
        // SPF without the relay: someone else's range, then -all.
        .txt("bounces.example.org", "v=spf1 ip4:198.51.100.0/24 -all")
        .txt("example.org", "v=spf1 include:_spf.example.net ~all")
        .txt("_spf.example.net", "v=spf1 ip4:192.0.2.0/24 -all")
        .txt("s1._domainkey.example.org", &other)
        .txt("s2._domainkey.example.org", &newsroom.ed25519);
    // No DMARC record, no MX for the bounce domain.
    let dns = TestDns::start(&zone).await;
    let (ok, report) = newsroom.doctor(&dns.addr.to_string(), None);
    assert!(!ok, "a failed check fails the command:\n{report}");
    for line in [
        "FAIL  SPF of the return path (TXT bounces.example.org): does not cover the relay smtp.example.org (192.0.2.25): -all in bounces.example.org gives it fail; add a:smtp.example.org",
        "FAIL  DKIM key s1 (TXT s1._domainkey.example.org): p= is another key than the configured private key's public half",
        "FAIL  DMARC of the From domain (TXT _dmarc.example.org): no DMARC record",
        "FAIL  MX of the bounce domain (MX bounces.example.org): no MX record (and no address) for bounces.example.org",
        "PASS  DKIM key s2 (TXT s2._domainkey.example.org)",
        "PASS  SPF of the From domain (TXT example.org)",
        "4 check(s) failed",
    ] {
        assert!(report.contains(line), "missing «{line}» in\n{report}");
    }
    // What to publish instead is printed with the failure.
    let s1_line = report
        .lines()
        .find(|l| l.contains("FAIL  DKIM key s1"))
        .unwrap();
    let p = newsroom.rsa.split("p=").nth(1).unwrap();
    assert!(s1_line.contains(p), "{s1_line}");
}

#[tokio::test]
async fn a_monitoring_dmarc_policy_and_a_relay_outside_spf_are_told_apart() {
    let newsroom = Newsroom::new();
    let zone = newsroom
        .zone_without_dmarc()
        .txt("_dmarc.example.org", "v=DMARC1; p=none")
        // A broken record at the From domain (two of them): only a warning there.
        .txt("example.org", "v=spf1 -all");
    let dns = TestDns::start(&zone).await;
    let (ok, report) = newsroom.doctor(&dns.addr.to_string(), None);
    assert!(ok, "warnings only:\n{report}");
    for line in [
        "WARN  DMARC of the From domain (TXT _dmarc.example.org): p=none; no rua=, so no aggregate reports come back: p=none only monitors",
        "WARN  SPF of the From domain (TXT example.org): receivers cannot use it: example.org has 2 SPF records (one is allowed)",
        "PASS  SPF of the return path (TXT bounces.example.org)",
    ] {
        assert!(report.contains(line), "missing «{line}» in\n{report}");
    }
}

/// SPF as a receiver walks it: terms in order, the first match deciding, through includes
/// and redirects, within ten lookups; what the doctor does not evaluate it says so.
#[tokio::test]
async fn spf_records_are_walked_in_order_through_includes_and_redirects() {
    let newsroom = Newsroom::new();
    let cases = [
        (
            "order.example.org",
            "v=spf1 -ip4:192.0.2.25 a:smtp.example.org -all",
            "FAIL  SPF of the return path (TXT order.example.org): does not cover the relay smtp.example.org (192.0.2.25): -ip4:192.0.2.25 in order.example.org gives it fail",
        ),
        (
            "redirect.example.org",
            "v=spf1 redirect=_spf.example.net",
            "PASS  SPF of the return path (TXT redirect.example.org): covers the relay smtp.example.org (192.0.2.25): redirect=_spf.example.net → ip4:192.0.2.0/24 in _spf.example.net",
        ),
        (
            "mx.example.org",
            "v=spf1 mx -all",
            "PASS  SPF of the return path (TXT mx.example.org): covers the relay smtp.example.org (192.0.2.25): mx (smtp.example.org is the relay) in mx.example.org",
        ),
        (
            "range.example.org",
            "v=spf1 a:relays.example.net/24 -all",
            "PASS  SPF of the return path (TXT range.example.org): covers the relay smtp.example.org (192.0.2.25): a:relays.example.net/24 in range.example.org",
        ),
        (
            "esp.example.org",
            "v=spf1 include:example.org -all",
            // The relay's own domain is evaluated, not taken on its name.
            "PASS  SPF of the return path (TXT esp.example.org): covers the relay smtp.example.org (192.0.2.25): include:example.org in esp.example.org → include:_spf.example.net in example.org → ip4:192.0.2.0/24 in _spf.example.net",
        ),
        (
            // The relay's own name, whose record leaves the relay out: receivers fail it.
            "smtp.example.org",
            "v=spf1 ip4:198.51.100.1 -all",
            "FAIL  SPF of the return path (TXT smtp.example.org): does not cover the relay",
        ),
        (
            "self.example.org",
            "v=spf1 include:smtp.example.org -all",
            "WARN  SPF of the return path (TXT self.example.org): could not be decided: include:smtp.example.org in self.example.org: the relay is named under smtp.example.org, but smtp.example.org's record does not cover its addresses",
        ),
        (
            "exists.example.org",
            "v=spf1 -exists:%{i}.bl.example.net a:smtp.example.org -all",
            "WARN  SPF of the return path (TXT exists.example.org): could not be decided: -exists:%{i}.bl.example.net in exists.example.org: not evaluated here",
        ),
        (
            "plus-exists.example.org",
            "v=spf1 exists:%{i}.ok.example.net a:smtp.example.org -all",
            "PASS  SPF of the return path (TXT plus-exists.example.org): covers the relay",
        ),
        (
            "loop.example.org",
            "v=spf1 include:loop.example.org -all",
            "FAIL  SPF of the return path (TXT loop.example.org): receivers cannot use it: more than 10 DNS-querying terms",
        ),
        (
            "dangling.example.org",
            "v=spf1 include:nothing.example.net -all",
            "FAIL  SPF of the return path (TXT dangling.example.org): receivers cannot use it: include:nothing.example.net in dangling.example.org: no SPF record at nothing.example.net",
        ),
        (
            "typo.example.org",
            "v=spf1 ip4:192.0.2.0/33 -all",
            "FAIL  SPF of the return path (TXT typo.example.org): receivers cannot use it: typo.example.org: `ip4:192.0.2.0/33` is not an SPF term",
        ),
        (
            "open.example.org",
            "v=spf1 +all",
            "WARN  SPF of the return path (TXT open.example.org): +all in open.example.org: every host on the Internet may send as open.example.org",
        ),
    ];
    let mut zone = newsroom
        .right_zone()
        .mx("mx.example.org", RELAY, 10)
        .host("relays.example.net", "192.0.2.1");
    for (domain, spf, _) in &cases {
        zone = zone.txt(domain, spf);
    }
    let dns = TestDns::start(&zone).await;
    for (domain, _, line) in cases {
        let (_, report) = newsroom.doctor_at(domain, &dns.addr.to_string(), None);
        assert!(report.contains(line), "missing «{line}» in\n{report}");
    }
}

#[tokio::test]
async fn a_nameserver_that_does_not_answer_is_a_warning_within_the_timeout() {
    let newsroom = Newsroom::new();
    let started = std::time::Instant::now();
    let (ok, report) = newsroom.doctor(&silent_nameserver(), None);
    let took = started.elapsed();
    assert!(ok, "nothing is known to be wrong:\n{report}");
    assert!(
        took < std::time::Duration::from_secs(12),
        "bounded by the lookups' timeout (5 s, run side by side): {took:?}"
    );
    for line in [
        "WARN  SPF of the return path (TXT bounces.example.org): not checked: A/AAAA smtp.example.org: no answer within 5s",
        "WARN  DKIM key s1 (TXT s1._domainkey.example.org): not checked: TXT s1._domainkey.example.org: no answer within 5s",
        "WARN  DMARC of the From domain (TXT _dmarc.example.org): not checked",
        "WARN  MX of the bounce domain (MX bounces.example.org): not checked",
    ] {
        assert!(report.contains(line), "missing «{line}» in\n{report}");
    }
}

/// The resolver others use (the warm-up groups custom domains by MX): answers are owned,
/// sorted, and an MX answer is kept, so asking again costs no lookup.
#[tokio::test]
async fn mx_answers_are_sorted_and_kept_so_asking_again_asks_no_server() {
    use nashra::dns::{Dns, DnsError, Mx};
    let zone = Zone::new()
        .mx("news.example.org", "ALT1.aspmx.l.google.com", 20)
        .mx("news.example.org", "aspmx.l.google.com", 10)
        .txt("news.example.org", "v=spf1 include:_spf.google.com -all");
    let server = TestDns::start(&zone).await;
    let dns = Dns::with_timeout(&[server.addr], std::time::Duration::from_secs(2)).unwrap();
    let google = vec![
        Mx {
            preference: 10,
            exchange: "aspmx.l.google.com".into(),
        },
        Mx {
            preference: 20,
            exchange: "alt1.aspmx.l.google.com".into(),
        },
    ];
    assert_eq!(dns.mx("news.example.org").await.unwrap(), google);
    assert_eq!(dns.mx("nothing.example.org").await.unwrap(), vec![]);
    assert_eq!(dns.mx_cached(), 2, "an absent MX is remembered too");
    assert!(matches!(
        dns.mx("not a name").await,
        Err(DnsError::BadName(_))
    ));

    drop(server);
    let clone = dns.clone();
    let started = std::time::Instant::now();
    assert_eq!(clone.mx("News.Example.org.").await.unwrap(), google);
    assert!(
        started.elapsed() < std::time::Duration::from_millis(100),
        "from the cache, which clones share"
    );
    assert!(
        matches!(dns.txt("news.example.org").await, Err(DnsError::Timeout(_))),
        "the server is gone: a lookup not cached times out"
    );
}
