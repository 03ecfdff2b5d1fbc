//! SPF (RFC 7208) as far as the doctor needs it: does a domain's record let the relay send?
//!
//! The record is parsed whole (a term it cannot read is an error, as for a receiver) and its
//! terms are walked in order, the first match deciding, through `include:` and `redirect=`,
//! within RFC 7208's ten DNS-querying terms — which also bounds how deep includes go (an
//! include of itself ends there, as a receiver's permerror).
//!
//! What is compared is the relay as the configuration names it: a term that names the relay's
//! host (`a:smtp.example.org`, an `mx` whose exchange is it, an `include:` of the relay's own
//! domain such as `include:mailgun.org` for `smtp.mailgun.org`), or an address range holding
//! one of the addresses the relay's name resolves to. Not evaluated, and said so: macros
//! (`%{i}`), `exists:`, `ptr`, the void-lookup limit, and the address mail really leaves
//! from — a provider's submission host is often not its sending address, which is why its
//! `include:` is matched by name; a relay on this machine (`localhost`) is not judged at all.
//!
//! Over 500 lines with its tests: the parser and the walk read one grammar and stay together.

use std::{future::Future, net::IpAddr, pin::Pin};

use crate::{dns::Dns, domain::Cidr};

/// RFC 7208 §4.6.4: at most ten terms that query DNS (each include one of them).
const MAX_LOOKUPS: u32 = 10;
/// Exchanges of one `mx` term looked at (RFC 7208 §4.6.4 says the same).
const MAX_MX: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qualifier {
    Pass,
    Fail,
    SoftFail,
    Neutral,
}

impl Qualifier {
    fn name(self) -> &'static str {
        match self {
            Qualifier::Pass => "pass",
            Qualifier::Fail => "fail",
            Qualifier::SoftFail => "softfail",
            Qualifier::Neutral => "neutral",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mechanism {
    All,
    Include(String),
    /// `a` or `mx`, with an optional domain and prefix lengths for IPv4 and IPv6.
    A(Option<String>, u8, u8),
    Mx(Option<String>, u8, u8),
    Ip(Cidr),
    Exists(String),
    Ptr(Option<String>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    pub qualifier: Qualifier,
    pub mechanism: Mechanism,
    /// As written, for the report.
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub terms: Vec<Term>,
    pub redirect: Option<String>,
}

/// Whether a TXT string is an SPF record (`v=spf1` alone or followed by a space).
pub fn is_spf(txt: &str) -> bool {
    let t = txt.trim_start().as_bytes();
    t.len() >= 6 && t[..6].eq_ignore_ascii_case(b"v=spf1") && (t.len() == 6 || t[6] == b' ')
}

/// Reads an SPF record; an error is what a receiver would call a permerror.
pub fn parse(txt: &str) -> Result<Record, String> {
    if !is_spf(txt) {
        return Err("does not start with v=spf1".into());
    }
    let mut record = Record {
        terms: Vec::new(),
        redirect: None,
    };
    for text in txt.trim_start()[6..].split_ascii_whitespace() {
        let bad = || format!("`{text}` is not an SPF term");
        let name_end = text.find([':', '/', '=']).unwrap_or(text.len());
        if text[name_end..].starts_with('=') {
            let (name, value) = (&text[..name_end], &text[name_end + 1..]);
            if name.eq_ignore_ascii_case("redirect") {
                if record.redirect.is_some() {
                    return Err("two redirect= modifiers".into());
                }
                record.redirect = Some(domain_spec(value).ok_or_else(bad)?);
            }
            // exp= and unknown modifiers change nothing here (RFC 7208 §6).
            continue;
        }
        let (qualifier, body) = match text.as_bytes().first() {
            Some(b'+') => (Qualifier::Pass, &text[1..]),
            Some(b'-') => (Qualifier::Fail, &text[1..]),
            Some(b'~') => (Qualifier::SoftFail, &text[1..]),
            Some(b'?') => (Qualifier::Neutral, &text[1..]),
            _ => (Qualifier::Pass, text),
        };
        let end = body.find([':', '/']).unwrap_or(body.len());
        let (name, rest) = (body[..end].to_ascii_lowercase(), &body[end..]);
        let arg = rest.strip_prefix(':');
        let mechanism = match (name.as_str(), arg) {
            ("all", None) if rest.is_empty() => Mechanism::All,
            ("include", Some(d)) => Mechanism::Include(domain_spec(d).ok_or_else(bad)?),
            ("exists", Some(d)) => Mechanism::Exists(domain_spec(d).ok_or_else(bad)?),
            ("ptr", d) => Mechanism::Ptr(match d {
                Some(d) => Some(domain_spec(d).ok_or_else(bad)?),
                None if rest.is_empty() => None,
                None => return Err(bad()),
            }),
            ("ip4" | "ip6", Some(net)) => {
                let cidr: Cidr = net.parse().map_err(|_| bad())?;
                let addr_v4 = net.split('/').next().is_some_and(|a| !a.contains(':'));
                if addr_v4 != (name == "ip4") {
                    return Err(bad());
                }
                Mechanism::Ip(cidr)
            }
            ("a" | "mx", _) => {
                let (domain, lengths) = match arg {
                    Some(a) => match a.find('/') {
                        Some(i) => (Some(&a[..i]), &a[i..]),
                        None => (Some(a), ""),
                    },
                    None => (None, rest),
                };
                let domain = match domain {
                    Some(d) => Some(domain_spec(d).ok_or_else(bad)?),
                    None => None,
                };
                let (v4, v6) = cidr_lengths(lengths).ok_or_else(bad)?;
                if name == "a" {
                    Mechanism::A(domain, v4, v6)
                } else {
                    Mechanism::Mx(domain, v4, v6)
                }
            }
            _ => return Err(bad()),
        };
        record.terms.push(Term {
            qualifier,
            mechanism,
            text: text.to_owned(),
        });
    }
    Ok(record)
}

/// A domain as written in a term, lower-case; macros are kept as they are.
fn domain_spec(d: &str) -> Option<String> {
    let d = d.trim_end_matches('.');
    (!d.is_empty() && d.bytes().all(|b| b.is_ascii_graphic())).then(|| d.to_ascii_lowercase())
}

/// `""`, `/24`, `//64` or `/24//64`.
fn cidr_lengths(s: &str) -> Option<(u8, u8)> {
    let (v4, v6) = match s.split_once("//") {
        Some((a, b)) => (a, Some(b)),
        None => (s, None),
    };
    let v4 = match v4.strip_prefix('/') {
        Some(n) => n.parse().ok().filter(|n| *n <= 32)?,
        None if v4.is_empty() => 32,
        None => return None,
    };
    let v6 = match v6 {
        Some(n) => n.parse().ok().filter(|n| *n <= 128)?,
        None => 128,
    };
    Some((v4, v6))
}

/// The SPF term that names a relay: `a:` for a host name, `ip4:`/`ip6:` for an address.
pub fn term_for(host: &str) -> String {
    match host.trim_matches(['[', ']']).parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => format!("ip4:{ip}"),
        Ok(IpAddr::V6(ip)) => format!("ip6:{ip}"),
        Err(_) => format!("a:{host}"),
    }
}

/// The relay as the configuration names it, and the addresses its name resolves to.
#[derive(Debug, Clone)]
pub struct Relay {
    /// Lower-case host name, or an address as written.
    pub host: String,
    pub addrs: Vec<IpAddr>,
}

impl Relay {
    fn is_named_by(&self, domain: &str) -> bool {
        self.host == domain
    }

    fn is_in(&self, cidr: &Cidr) -> bool {
        self.addrs.iter().any(|a| cidr.contains(*a))
    }
}

/// What a domain's SPF says of the relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A term that gives `pass` matches the relay: which, through which includes.
    Covered(String),
    /// `+all`: the relay passes, with every other host on the Internet.
    EveryHost(String),
    /// Evaluated to the end, and the relay does not pass: what it gets.
    NotCovered(String),
    Missing,
    /// A record a receiver cannot use (permerror): why.
    Broken(String),
    /// Could not be decided here: a lookup failed, or a term is not evaluated.
    Unknown(String),
}

/// Evaluates `domain`'s SPF for `relay`.
pub async fn check(dns: &Dns, domain: &str, relay: &Relay) -> Verdict {
    let mut lookups = 0;
    match eval(dns, domain.to_owned(), relay, &mut lookups).await {
        Outcome::Match(Qualifier::Pass, hit) if hit.everyone => Verdict::EveryHost(hit.why),
        Outcome::Match(Qualifier::Pass, hit) => Verdict::Covered(hit.why),
        Outcome::Match(q, hit) => Verdict::NotCovered(format!("{} gives it {}", hit.why, q.name())),
        Outcome::NoMatch => Verdict::NotCovered("no term matches it (neutral)".into()),
        Outcome::NoRecord => Verdict::Missing,
        Outcome::PermError(why) => Verdict::Broken(why),
        Outcome::Unknown(why) => Verdict::Unknown(why),
    }
}

/// The result of one record.
enum Outcome {
    /// The first matching term's qualifier, and the terms that led to it.
    Match(Qualifier, Hit),
    NoMatch,
    NoRecord,
    PermError(String),
    Unknown(String),
}

/// A term that matched: the terms that led to it, and whether it was an `all`.
struct Hit {
    why: String,
    everyone: bool,
}

impl Hit {
    fn by(why: String) -> Option<Hit> {
        Some(Hit {
            why,
            everyone: false,
        })
    }
}

/// Whether one term matches (`Some` with how), or why that is not known here (a term not
/// evaluated, a failed lookup, an include that cannot be decided).
type Matched = Result<Option<Hit>, Halt>;

enum Halt {
    Perm(String),
    Unknown(String),
}

fn eval<'a>(
    dns: &'a Dns,
    domain: String,
    relay: &'a Relay,
    lookups: &'a mut u32,
) -> Pin<Box<dyn Future<Output = Outcome> + Send + 'a>> {
    Box::pin(async move {
        let txt = match dns.txt(&domain).await {
            Ok(t) => t,
            Err(e) => return Outcome::Unknown(format!("TXT {domain}: {e}")),
        };
        let spf: Vec<&String> = txt.iter().filter(|t| is_spf(t)).collect();
        let record = match spf.as_slice() {
            [] => return Outcome::NoRecord,
            [one] => match parse(one) {
                Ok(r) => r,
                Err(e) => return Outcome::PermError(format!("{domain}: {e}")),
            },
            many => {
                return Outcome::PermError(format!(
                    "{domain} has {} SPF records (one is allowed)",
                    many.len()
                ));
            }
        };
        // Unevaluated `+` terms before a decision: a later pass still holds, nothing else does.
        let mut undecided: Vec<String> = Vec::new();
        for term in &record.terms {
            match matches(dns, &domain, term, relay, lookups).await {
                Ok(Some(hit)) => {
                    if term.qualifier != Qualifier::Pass && !undecided.is_empty() {
                        return Outcome::Unknown(undecided.join("; "));
                    }
                    return Outcome::Match(term.qualifier, hit);
                }
                Ok(None) => {}
                Err(Halt::Perm(why)) => return Outcome::PermError(why),
                Err(Halt::Unknown(why)) if term.qualifier == Qualifier::Pass => undecided.push(why),
                Err(Halt::Unknown(why)) => {
                    undecided.push(why);
                    return Outcome::Unknown(undecided.join("; "));
                }
            }
        }
        if let Some(target) = record.redirect {
            if let Err(h) = spend(lookups) {
                return halt_outcome(h);
            }
            if target.contains('%') {
                undecided.push(format!("redirect={target} (a macro, not evaluated)"));
            } else {
                return match eval(dns, target.clone(), relay, lookups).await {
                    Outcome::NoRecord => {
                        Outcome::PermError(format!("redirect={target}: no SPF record there"))
                    }
                    Outcome::Match(q, hit) if q == Qualifier::Pass || undecided.is_empty() => {
                        Outcome::Match(
                            q,
                            Hit {
                                why: format!("redirect={target} → {}", hit.why),
                                ..hit
                            },
                        )
                    }
                    other if undecided.is_empty() => other,
                    Outcome::Unknown(why) => {
                        undecided.push(why);
                        Outcome::Unknown(undecided.join("; "))
                    }
                    _ => Outcome::Unknown(undecided.join("; ")),
                };
            }
        }
        if undecided.is_empty() {
            Outcome::NoMatch
        } else {
            Outcome::Unknown(undecided.join("; "))
        }
    })
}

fn halt_outcome(h: Halt) -> Outcome {
    match h {
        Halt::Perm(why) => Outcome::PermError(why),
        Halt::Unknown(why) => Outcome::Unknown(why),
    }
}

/// Counts one DNS-querying term.
fn spend(lookups: &mut u32) -> Result<(), Halt> {
    *lookups += 1;
    if *lookups > MAX_LOOKUPS {
        return Err(Halt::Perm(format!(
            "more than {MAX_LOOKUPS} DNS-querying terms (receivers stop there: permerror)"
        )));
    }
    Ok(())
}

async fn matches(
    dns: &Dns,
    domain: &str,
    term: &Term,
    relay: &Relay,
    lookups: &mut u32,
) -> Matched {
    let text = &term.text;
    let at = |what: &str| format!("{what} in {domain}");
    let unknown = |why: String| Err(Halt::Unknown(format!("{text} in {domain}: {why}")));
    match &term.mechanism {
        Mechanism::All => Ok(Some(Hit {
            why: at(text),
            everyone: true,
        })),
        Mechanism::Ip(cidr) if relay.is_in(cidr) => Ok(Hit::by(at(text))),
        Mechanism::Ip(_) => Ok(None),
        Mechanism::Exists(_) | Mechanism::Ptr(_) => unknown("not evaluated here".into()),
        Mechanism::Include(target) => {
            spend(lookups)?;
            if target.contains('%') {
                return unknown("a macro, not evaluated".into());
            }
            // The relay's own domain is evaluated like any other: a relay named under it
            // that its record leaves out would be soft- or hard-failed by receivers.
            let by_name = relay.host == *target || relay.host.ends_with(&format!(".{target}"));
            match eval(dns, target.clone(), relay, lookups).await {
                Outcome::Match(Qualifier::Pass, hit) => Ok(Some(Hit {
                    why: format!("{} → {}", at(text), hit.why),
                    ..hit
                })),
                Outcome::Match(..) | Outcome::NoMatch if by_name => unknown(format!(
                    "the relay is named under {target}, but {target}'s record does not cover its addresses"
                )),
                Outcome::Match(..) | Outcome::NoMatch => Ok(None),
                Outcome::NoRecord => Err(Halt::Perm(format!(
                    "{}: no SPF record at {target} (permerror)",
                    at(text)
                ))),
                Outcome::PermError(why) => Err(Halt::Perm(why)),
                Outcome::Unknown(why) => Err(Halt::Unknown(why)),
            }
        }
        Mechanism::A(target, v4, v6) => {
            spend(lookups)?;
            let target = target.as_deref().unwrap_or(domain);
            if target.contains('%') {
                return unknown("a macro, not evaluated".into());
            }
            if relay.is_named_by(target) {
                return Ok(Hit::by(at(&format!("{text} (names the relay)"))));
            }
            match dns.addresses(target).await {
                Ok(addrs) if in_any(relay, &addrs, *v4, *v6) => Ok(Hit::by(at(text))),
                Ok(_) => Ok(None),
                Err(e) => unknown(format!("A/AAAA {target}: {e}")),
            }
        }
        Mechanism::Mx(target, v4, v6) => {
            spend(lookups)?;
            let target = target.as_deref().unwrap_or(domain);
            if target.contains('%') {
                return unknown("a macro, not evaluated".into());
            }
            let mx = match dns.mx(target).await {
                Ok(mx) => mx,
                Err(e) => return unknown(format!("MX {target}: {e}")),
            };
            for m in mx.iter().filter(|m| !m.exchange.is_empty()).take(MAX_MX) {
                if relay.is_named_by(&m.exchange) {
                    return Ok(Hit::by(at(&format!(
                        "{text} ({} is the relay)",
                        m.exchange
                    ))));
                }
                match dns.addresses(&m.exchange).await {
                    Ok(addrs) if in_any(relay, &addrs, *v4, *v6) => {
                        return Ok(Hit::by(at(&format!("{text} ({})", m.exchange))));
                    }
                    Ok(_) => {}
                    Err(e) => return unknown(format!("A/AAAA {}: {e}", m.exchange)),
                }
            }
            Ok(None)
        }
    }
}

/// Whether one of the relay's addresses lies in one of `addrs` widened to the prefix lengths.
fn in_any(relay: &Relay, addrs: &[IpAddr], v4: u8, v6: u8) -> bool {
    addrs.iter().any(|a| {
        let len = if a.is_ipv4() { v4 } else { v6 };
        format!("{a}/{len}")
            .parse::<Cidr>()
            .is_ok_and(|c| relay.is_in(&c))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(s: &str) -> Cidr {
        s.parse().unwrap()
    }

    #[test]
    fn a_record_is_read_term_by_term() {
        let r = parse(
            "v=spf1 ip4:192.0.2.0/24 -ip6:2001:db8::/32 a a:smtp.example.org/28 mx:Example.org//64 \
             include:_spf.google.com ~exists:%{i}.x.org ?ptr redirect=_spf.example.org exp=explain.example.org ~all",
        )
        .unwrap();
        let m: Vec<_> = r
            .terms
            .iter()
            .map(|t| (t.qualifier, t.mechanism.clone()))
            .collect();
        assert_eq!(
            m,
            vec![
                (Qualifier::Pass, Mechanism::Ip(cidr("192.0.2.0/24"))),
                (Qualifier::Fail, Mechanism::Ip(cidr("2001:db8::/32"))),
                (Qualifier::Pass, Mechanism::A(None, 32, 128)),
                (
                    Qualifier::Pass,
                    Mechanism::A(Some("smtp.example.org".into()), 28, 128)
                ),
                (
                    Qualifier::Pass,
                    Mechanism::Mx(Some("example.org".into()), 32, 64)
                ),
                (
                    Qualifier::Pass,
                    Mechanism::Include("_spf.google.com".into())
                ),
                (Qualifier::SoftFail, Mechanism::Exists("%{i}.x.org".into())),
                (Qualifier::Neutral, Mechanism::Ptr(None)),
                (Qualifier::SoftFail, Mechanism::All),
            ]
        );
        assert_eq!(r.redirect.as_deref(), Some("_spf.example.org"));
    }

    #[test]
    fn only_v_spf1_is_spf_and_a_bad_term_is_an_error() {
        assert!(is_spf("v=spf1 -all"));
        assert!(is_spf("V=SPF1"));
        assert!(!is_spf("v=spf10 -all"));
        assert!(!is_spf("v=DKIM1; p=abc"));
        assert!(!is_spf("spf2.0/pra ip4:1.2.3.4"));
        for bad in [
            "v=spf1 ip4:300.1.1.1",
            "v=spf1 ip4:2001:db8::1",
            "v=spf1 ip6:192.0.2.1",
            "v=spf1 include",
            "v=spf1 a/33",
            "v=spf1 all:x",
            "v=spf1 foo:bar",
            "v=spf1 redirect=a.org redirect=b.org",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert_eq!(parse("v=spf1").unwrap().terms, vec![]);
        assert!(
            parse("v=spf1 moo=cow -all").is_ok(),
            "unknown modifiers are ignored"
        );
    }

    #[test]
    fn relays_are_matched_by_address_range() {
        let relay = Relay {
            host: "smtp.example.org".into(),
            addrs: vec!["192.0.2.25".parse().unwrap()],
        };
        assert!(relay.is_in(&cidr("192.0.2.0/24")));
        assert!(!relay.is_in(&cidr("198.51.100.0/24")));
        assert!(in_any(&relay, &["192.0.2.1".parse().unwrap()], 24, 128));
        assert!(!in_any(&relay, &["192.0.2.1".parse().unwrap()], 32, 128));
    }
}
