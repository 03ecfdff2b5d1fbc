//! The records as published, looked up: SPF of the return path (and of From's domain) against
//! the relay, each DKIM key's record against the private key, the From domain's DMARC policy,
//! and the MX that takes the bounce domain's mail. Each check names the record it read. A
//! lookup that gets no answer is a WARN (nothing is known to be wrong), never a PASS.

use std::net::IpAddr;

use base64::{Engine, engine::general_purpose::STANDARD};

use super::{
    check::{Check, Level},
    dmarc::{self, Policy},
    spf::{self, Relay, Verdict},
    tags,
};
use crate::{
    dkim,
    dns::{Dns, DnsError},
};

/// What the configuration says should be published.
pub struct Expected<'a> {
    pub from_domain: String,
    /// The envelope sender's domain, which SPF checks.
    pub return_domain: String,
    /// Where bounces come back by mail (a bounce mailbox or a return path is configured):
    /// its MX is checked.
    pub bounce_domain: Option<String>,
    /// The relays' hosts as configured.
    pub relays: Vec<String>,
    pub keys: &'a [dkim::Key],
}

/// Every check, looked up at once; each lookup bounded by the resolver's timeout.
pub async fn checks(dns: &Dns, e: &Expected<'_>) -> Vec<Check> {
    let spf = async {
        let mut out = Vec::new();
        for host in &e.relays {
            let relay = relay(dns, host).await;
            let from = async {
                if e.from_domain == e.return_domain {
                    None
                } else {
                    Some(spf_check(dns, &e.from_domain, &relay, false).await)
                }
            };
            let (ret, from) = futures::join!(spf_check(dns, &e.return_domain, &relay, true), from);
            out.push(ret);
            out.extend(from);
        }
        out
    };
    let dkim = futures::future::join_all(e.keys.iter().map(|k| dkim_check(dns, k)));
    let mx = async {
        match &e.bounce_domain {
            Some(d) => Some(mx_check(dns, d).await),
            None => None,
        }
    };
    let (spf, dkim, dmarc, mx) = futures::join!(spf, dkim, dmarc_check(dns, &e.from_domain), mx);
    spf.into_iter()
        .chain(dkim)
        .chain([dmarc])
        .chain(mx)
        .collect()
}

/// A relay and its addresses, or why they are unknown.
struct Resolved {
    relay: Relay,
    failed: Option<DnsError>,
}

async fn relay(dns: &Dns, host: &str) -> Resolved {
    let host = host.trim().trim_end_matches('.').to_ascii_lowercase();
    if let Ok(ip) = host.trim_matches(['[', ']']).parse::<IpAddr>() {
        return Resolved {
            relay: Relay {
                host,
                addrs: vec![ip],
            },
            failed: None,
        };
    }
    let (addrs, failed) = match dns.addresses(&host).await {
        Ok(a) => (a, None),
        Err(e) => (Vec::new(), Some(e)),
    };
    Resolved {
        relay: Relay { host, addrs },
        failed,
    }
}

fn is_local(r: &Relay) -> bool {
    r.host == "localhost" || (!r.addrs.is_empty() && r.addrs.iter().all(|a| a.is_loopback()))
}

/// An SPF evaluation may take this many lookup timeouts in all.
const SPF_TIMEOUTS: u32 = 3;

async fn spf_check(dns: &Dns, domain: &str, r: &Resolved, return_path: bool) -> Check {
    let what = if return_path {
        format!("SPF of the return path (TXT {domain})")
    } else {
        format!("SPF of the From domain (TXT {domain})")
    };
    let host = &r.relay.host;
    // The From domain's SPF matters only where it is also an envelope sender (HELO, other
    // mail): what is wrong there is a warning, not a failure of this newsletter's mail.
    let wrong = if return_path {
        Level::Fail
    } else {
        Level::Warn
    };
    if is_local(&r.relay) {
        return Check::new(
            Level::Warn,
            what,
            format!(
                "the relay is this machine ({host}): SPF must cover the address it sends from, which doctor cannot see"
            ),
        );
    }
    // A nameserver that did not answer for the relay will not for the rest: one timeout is
    // enough (the other checks run beside this one).
    if let Some(e @ DnsError::Timeout(_)) = &r.failed {
        return unanswered(what, "A/AAAA", host, e);
    }
    let addrs: Vec<String> = r.relay.addrs.iter().map(|a| a.to_string()).collect();
    let relay_is = if addrs.is_empty() {
        host.clone()
    } else {
        format!("{host} ({})", addrs.join(", "))
    };
    // Each lookup is bounded; a record that chains many slow ones is bounded as a whole.
    let bound = dns.timeout() * SPF_TIMEOUTS;
    let verdict = tokio::time::timeout(bound, spf::check(dns, domain, &r.relay))
        .await
        .unwrap_or_else(|_| Verdict::Unknown(format!("no decision within {bound:?}")));
    match verdict {
        Verdict::Covered(why) => Check::new(
            Level::Pass,
            what,
            format!("covers the relay {relay_is}: {why}"),
        ),
        Verdict::EveryHost(why) => Check::new(
            Level::Warn,
            what,
            format!(
                "{why}: every host on the Internet may send as {domain}; name the relay instead ({} or your provider's include:)",
                spf::term_for(host)
            ),
        ),
        Verdict::NotCovered(why) => match &r.failed {
            Some(e) => Check::new(
                Level::Warn,
                what,
                format!(
                    "the relay's addresses could not be looked up (A/AAAA {host}: {e}), and nothing in the record names it"
                ),
            ),
            None => Check::new(
                wrong,
                what,
                format!(
                    "does not cover the relay {relay_is}: {why}; add {} (or your provider's include:) before the all",
                    spf::term_for(host)
                ),
            ),
        },
        Verdict::Missing => Check::new(
            wrong,
            what,
            format!("no SPF record (a TXT starting v=spf1) at {domain}: publish the one above"),
        ),
        Verdict::Broken(why) => Check::new(wrong, what, format!("receivers cannot use it: {why}")),
        Verdict::Unknown(why) => {
            Check::new(Level::Warn, what, format!("could not be decided: {why}"))
        }
    }
}

async fn dkim_check(dns: &Dns, key: &dkim::Key) -> Check {
    let name = key.record_name();
    let what = format!("DKIM key {} (TXT {name})", key.selector);
    let txt = match dns.txt(&name).await {
        Ok(t) => t,
        Err(e) => return unanswered(what, "TXT", &name, &e),
    };
    // A record is a key record when its tags read and it has p= (v=, if any, comes first).
    let records: Vec<Vec<(String, String)>> = txt
        .iter()
        .filter_map(|t| tags::parse(t))
        .filter(|t| {
            tags::get(t, "p").is_some()
                && t.iter()
                    .position(|(n, _)| n == "v")
                    .is_none_or(|i| i == 0 && t[0].1 == "DKIM1")
        })
        .collect();
    let publish = format!("publish {name}. IN TXT \"{}\"", key.txt_record());
    let t = match records.as_slice() {
        [] => {
            return Check::new(
                Level::Fail,
                what,
                format!("no DKIM key record (v=DKIM1; … p=…) there: {publish}"),
            );
        }
        [one] => one,
        many => {
            return Check::new(
                Level::Fail,
                what,
                format!(
                    "{} key records there: receivers may take either; keep one",
                    many.len()
                ),
            );
        }
    };
    let want_k = match key.algorithm() {
        dkim::Algorithm::RsaSha256 => "rsa",
        dkim::Algorithm::Ed25519Sha256 => "ed25519",
    };
    let k = tags::get(t, "k").unwrap_or("rsa").to_ascii_lowercase();
    if k != want_k {
        return Check::new(
            Level::Fail,
            what,
            format!("k={k}, but the configured key is {want_k}: {publish}"),
        );
    }
    let p: String = tags::get(t, "p")
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    if p.is_empty() {
        return Check::new(
            Level::Fail,
            what,
            format!("p= is empty: the key is revoked; {publish}"),
        );
    }
    match STANDARD.decode(&p) {
        Ok(der) if der == key.public_key_der() => Check::new(
            Level::Pass,
            what,
            format!("k={k}, p= is the public half of the configured private key"),
        ),
        Ok(_) => Check::new(
            Level::Fail,
            what,
            format!(
                "p= is another key than the configured private key's public half (p={}…): signatures will fail; {publish}",
                &p[..p.len().min(24)]
            ),
        ),
        Err(_) => Check::new(Level::Fail, what, format!("p= is not base64: {publish}")),
    }
}

/// At most this many parents of From's domain are asked when it has no record of its own.
const DMARC_PARENTS: usize = 4;

async fn dmarc_check(dns: &Dns, from_domain: &str) -> Check {
    let mut domain = from_domain.to_owned();
    let first = format!("_dmarc.{from_domain}");
    let what = format!("DMARC of the From domain (TXT {first})");
    for _ in 0..=DMARC_PARENTS {
        let name = format!("_dmarc.{domain}");
        let txt = match dns.txt(&name).await {
            Ok(t) => t,
            Err(e) => return unanswered(what, "TXT", &name, &e),
        };
        let found: Vec<&String> = txt.iter().filter(|t| dmarc::is_dmarc(t)).collect();
        let inherited = domain != from_domain;
        match found.as_slice() {
            [] => {}
            [one] => return dmarc_record(what, &name, one, inherited),
            many => {
                return Check::new(
                    Level::Fail,
                    what,
                    format!(
                        "{} DMARC records at {name}: receivers then apply none; keep one",
                        many.len()
                    ),
                );
            }
        }
        // Up one label, never to a top-level domain (the public suffix list is not read:
        // `example.co.uk`'s walk stops at `co.uk`, whose record it would be wrong to take).
        match domain.split_once('.') {
            Some((_, parent)) if parent.contains('.') => domain = parent.to_owned(),
            _ => break,
        }
    }
    Check::new(
        Level::Fail,
        what,
        format!(
            "no DMARC record (a TXT starting v=DMARC1) at {first}: Gmail and Yahoo require one of bulk senders; publish the one above"
        ),
    )
}

fn dmarc_record(what: String, name: &str, txt: &str, inherited: bool) -> Check {
    let d = match dmarc::parse(txt) {
        Ok(d) => d,
        Err(why) => {
            return Check::new(
                Level::Fail,
                what,
                format!("{name}: receivers ignore it: {why}"),
            );
        }
    };
    // A parent's record governs a subdomain by its sp= when it has one.
    let policy = if inherited {
        d.subdomain_policy.unwrap_or(d.policy)
    } else {
        d.policy
    };
    let mut detail = format!("p={}", policy.name());
    if inherited {
        detail.push_str(&format!(" (from {name}, the parent domain's)"));
    }
    if d.percent < 100 {
        detail.push_str(&format!(", applied to {}% of failing mail", d.percent));
    }
    if d.rua.is_empty() {
        detail.push_str("; no rua=, so no aggregate reports come back");
    } else {
        detail.push_str(&format!("; reports to {}", d.rua.join(", ")));
    }
    let level = match policy {
        Policy::None => {
            detail.push_str(": p=none only monitors (receivers act on nothing); move to quarantine once the reports are clean");
            Level::Warn
        }
        Policy::Quarantine | Policy::Reject => Level::Pass,
    };
    Check::new(level, what, detail)
}

async fn mx_check(dns: &Dns, domain: &str) -> Check {
    let what = format!("MX of the bounce domain (MX {domain})");
    let mx = match dns.mx(domain).await {
        Ok(mx) => mx,
        Err(e) => return unanswered(what, "MX", domain, &e),
    };
    if mx.len() == 1 && mx[0].exchange.is_empty() {
        return Check::new(
            Level::Fail,
            what,
            format!("a null MX (\"0 .\"): {domain} takes no mail, so bounces cannot come back"),
        );
    }
    if !mx.is_empty() {
        let list: Vec<String> = mx
            .iter()
            .map(|m| format!("{} {}", m.preference, m.exchange))
            .collect();
        return Check::new(Level::Pass, what, list.join(", "));
    }
    match dns.addresses(domain).await {
        Ok(a) if !a.is_empty() => Check::new(
            Level::Warn,
            what,
            format!(
                "no MX record: bounces go to {domain}'s own address (implicit MX, RFC 5321 §5.1); publish an MX naming the bounce mailbox's server"
            ),
        ),
        Ok(_) => Check::new(
            Level::Fail,
            what,
            format!(
                "no MX record (and no address) for {domain}: bounces sent to it have nowhere to go, and many receivers refuse a sender whose domain takes no mail"
            ),
        ),
        Err(e) => unanswered(what, "A/AAAA", domain, &e),
    }
}

/// A lookup with no answer: nothing is known, so it warns.
fn unanswered(what: String, kind: &str, name: &str, e: &DnsError) -> Check {
    Check::new(
        Level::Warn,
        what,
        format!(
            "not checked: {kind} {name}: {e} (the nameservers asked are [dns] nameservers or --nameserver, else /etc/resolv.conf's)"
        ),
    )
}
