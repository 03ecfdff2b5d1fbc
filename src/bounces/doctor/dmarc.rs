//! DMARC records (RFC 7489 §6.3): `v=DMARC1` first, then the policy `p=` that receivers apply
//! to mail from the domain that fails both aligned SPF and aligned DKIM.

use super::tags;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    None,
    Quarantine,
    Reject,
}

impl Policy {
    fn parse(s: &str) -> Option<Policy> {
        match s.to_ascii_lowercase().as_str() {
            "none" => Some(Policy::None),
            "quarantine" => Some(Policy::Quarantine),
            "reject" => Some(Policy::Reject),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Policy::None => "none",
            Policy::Quarantine => "quarantine",
            Policy::Reject => "reject",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dmarc {
    pub policy: Policy,
    /// `sp=`: for subdomains, when it differs.
    pub subdomain_policy: Option<Policy>,
    /// `pct=`: the share of failing mail the policy applies to (100 when absent).
    pub percent: u8,
    /// `rua=`: where aggregate reports go.
    pub rua: Vec<String>,
}

/// Whether a TXT string claims to be a DMARC record (receivers ignore every other TXT there).
pub fn is_dmarc(txt: &str) -> bool {
    let rest = txt.split(';').next().unwrap_or("");
    rest.split_once('=')
        .is_some_and(|(n, v)| n.trim() == "v" && v.trim() == "DMARC1")
}

/// Reads a DMARC record; the error says what a receiver would find wrong.
pub fn parse(txt: &str) -> Result<Dmarc, String> {
    let t = tags::parse(txt).ok_or("not a list of tag=value pairs (or a tag twice)")?;
    match t.first() {
        Some((n, v)) if n == "v" && v == "DMARC1" => {}
        _ => return Err("v=DMARC1 must come first".into()),
    }
    let policy = match tags::get(&t, "p") {
        None => return Err("no p= (none, quarantine or reject)".into()),
        Some(p) => Policy::parse(p).ok_or(format!("p={p} is not none, quarantine or reject"))?,
    };
    let subdomain_policy = match tags::get(&t, "sp") {
        None => None,
        Some(p) => Some(Policy::parse(p).ok_or(format!("sp={p} is not a policy"))?),
    };
    let percent = match tags::get(&t, "pct") {
        None => 100,
        Some(p) => p
            .parse::<u8>()
            .ok()
            .filter(|p| *p <= 100)
            .ok_or(format!("pct={p} is not 0 to 100"))?,
    };
    let rua = tags::get(&t, "rua")
        .map(|r| {
            r.split(',')
                .map(|u| u.trim().to_owned())
                .filter(|u| !u.is_empty())
                .collect()
        })
        .unwrap_or_default();
    Ok(Dmarc {
        policy,
        subdomain_policy,
        percent,
        rua,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_gives_its_policy_share_and_report_addresses() {
        let d = parse("v=DMARC1; p=quarantine; sp=reject; pct=50; rua=mailto:a@example.org, mailto:b@example.net; adkim=s").unwrap();
        assert_eq!(d.policy, Policy::Quarantine);
        assert_eq!(d.subdomain_policy, Some(Policy::Reject));
        assert_eq!(d.percent, 50);
        assert_eq!(d.rua, ["mailto:a@example.org", "mailto:b@example.net"]);
        let d = parse("v=DMARC1;p=NONE").unwrap();
        assert_eq!((d.policy, d.percent, d.rua.len()), (Policy::None, 100, 0));
    }

    #[test]
    fn what_receivers_refuse_is_an_error() {
        for bad in [
            "p=reject; v=DMARC1",
            "v=DMARC1",
            "v=DMARC1; p=block",
            "v=DMARC1; p=none; pct=150",
            "v=DMARC1; p=none; sp=maybe",
            "v=DMARC1; p=none; p=reject",
            "v=dmarc1; p=none",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert!(is_dmarc("v=DMARC1; p=none"));
        assert!(is_dmarc("v=DMARC1"));
        assert!(!is_dmarc("v=spf1 -all"));
        assert!(!is_dmarc("google-site-verification=abc"));
    }
}
