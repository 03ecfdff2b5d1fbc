//! DNS lookups for the parts that need the published world: `nashra doctor` reads the SPF,
//! DKIM, DMARC and MX records it asks an operator to publish, and the warm-up groups custom
//! address domains by their mailbox provider's MX.
//!
//! One small door over `hickory-resolver`: [`Dns`] asks the nameservers it is given (tests
//! point it at their own dnsmasq) or, given none, the system's (`/etc/resolv.conf`, so a
//! private resolver configured there is used). Every lookup is bounded by a timeout and
//! returns owned values; a name with no record of the type asked (NXDOMAIN or an empty
//! answer) is an empty list, not an error, so callers tell "absent" from "could not ask".
//! `mx` answers from a cache of its own, bounded in entries, each kept for its TTL (clamped)
//! — failures too, for a minute, so a domain whose nameservers do not answer costs one
//! timeout a minute rather than one per reader. `Dns` is `Clone + Send + Sync`; clones share
//! the resolver and the cache.

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use hickory_resolver::{
    TokioResolver,
    config::{ConnectionConfig, NameServerConfig, ResolverConfig},
    lookup::Lookup,
    net::{NetError, runtime::TokioRuntimeProvider},
    proto::rr::RData,
};

/// What a lookup may take in all (the resolver's own tries included).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Domains whose MX answer is kept; past it the entry closest to expiring goes first. A
/// million readers rarely span more custom domains than this that matter at once.
pub const MX_CACHE_ENTRIES: usize = 10_000;
/// An MX answer is kept at least this long (a 0 s TTL would make the cache useless)…
const MX_MIN_TTL: Duration = Duration::from_secs(60);
/// …and at most this long, whatever its TTL says.
const MX_MAX_TTL: Duration = Duration::from_secs(24 * 3600);
/// A failed MX lookup (timeout, SERVFAIL) is remembered this long.
const MX_FAILURE_TTL: Duration = Duration::from_secs(60);
/// A negative answer without an SOA minimum is kept this long.
const MX_NEGATIVE_TTL: Duration = Duration::from_secs(300);

/// Why a lookup has no answer. An absent record is not one of these: it is an empty list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("`{0}` is not a domain name")]
    BadName(String),
    #[error("the DNS lookup failed: {0}")]
    Failed(String),
    #[error("no resolver: {0}")]
    Config(String),
}

/// One mail exchanger of a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mx {
    pub preference: u16,
    /// Lower-case, without the final dot; `""` for a null MX (RFC 7505: the domain takes
    /// no mail).
    pub exchange: String,
}

/// A resolver with a timeout and an MX cache; cheap to clone.
#[derive(Clone)]
pub struct Dns {
    resolver: TokioResolver,
    timeout: Duration,
    mx_cache: Arc<Mutex<MxCache>>,
}

impl std::fmt::Debug for Dns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Dns(timeout {:?})", self.timeout)
    }
}

impl Dns {
    /// Asks `nameservers` (UDP, then TCP for a truncated answer); none = the system's
    /// configuration. Lookups take at most [`DEFAULT_TIMEOUT`].
    pub fn new(nameservers: &[SocketAddr]) -> Result<Dns, DnsError> {
        Dns::with_timeout(nameservers, DEFAULT_TIMEOUT)
    }

    pub fn with_timeout(nameservers: &[SocketAddr], timeout: Duration) -> Result<Dns, DnsError> {
        let provider = TokioRuntimeProvider::default();
        let mut builder = if nameservers.is_empty() {
            TokioResolver::builder(provider)
                .map_err(|e| DnsError::Config(format!("reading /etc/resolv.conf: {e}")))?
        } else {
            let mut config = ResolverConfig::from_parts(None, Vec::new(), Vec::new());
            for ns in nameservers {
                let mut udp = ConnectionConfig::udp();
                udp.port = ns.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = ns.port();
                config.add_name_server(NameServerConfig::new(ns.ip(), true, vec![udp, tcp]));
            }
            TokioResolver::builder_with_config(config, provider)
        };
        let opts = builder.options_mut();
        // Two tries within the overall bound, so one lost UDP datagram is not a failure.
        opts.timeout = (timeout / 2).max(Duration::from_millis(100));
        opts.attempts = 2;
        // The names asked are whole domains: never append a search domain to them.
        opts.ndots = 0;
        let resolver = builder
            .build()
            .map_err(|e| DnsError::Config(e.to_string()))?;
        Ok(Dns {
            resolver,
            timeout,
            mx_cache: Arc::new(Mutex::new(MxCache::new(MX_CACHE_ENTRIES))),
        })
    }

    /// Each TXT record at `name`, its strings joined (a record longer than 255 bytes is
    /// published as several strings and means their concatenation, RFC 7208 §3.3, RFC 6376
    /// §3.6.2.2). Bytes that are not UTF-8 become U+FFFD.
    pub async fn txt(&self, name: &str) -> Result<Vec<String>, DnsError> {
        let found = self.ask(name, |r, n| r.txt_lookup(n)).await?;
        Ok(found.map_or_else(Vec::new, |l| {
            records(&l, |d| match d {
                RData::TXT(t) => Some(
                    t.txt_data
                        .iter()
                        .map(|s| String::from_utf8_lossy(s))
                        .collect::<String>(),
                ),
                _ => None,
            })
        }))
    }

    /// The IPv4 addresses of `name` (CNAMEs followed).
    pub async fn a(&self, name: &str) -> Result<Vec<Ipv4Addr>, DnsError> {
        let found = self.ask(name, |r, n| r.ipv4_lookup(n)).await?;
        Ok(found.map_or_else(Vec::new, |l| {
            records(&l, |d| match d {
                RData::A(a) => Some(a.0),
                _ => None,
            })
        }))
    }

    /// The IPv6 addresses of `name` (CNAMEs followed).
    pub async fn aaaa(&self, name: &str) -> Result<Vec<Ipv6Addr>, DnsError> {
        let found = self.ask(name, |r, n| r.ipv6_lookup(n)).await?;
        Ok(found.map_or_else(Vec::new, |l| {
            records(&l, |d| match d {
                RData::AAAA(a) => Some(a.0),
                _ => None,
            })
        }))
    }

    /// Both families, IPv4 first. A failed half fails the whole unless the other half found
    /// addresses (an empty list must mean there are none).
    pub async fn addresses(&self, name: &str) -> Result<Vec<IpAddr>, DnsError> {
        let (v4, v6) = futures::join!(self.a(name), self.aaaa(name));
        match (v4, v6) {
            (Err(e), Err(_)) => Err(e),
            (Err(e), Ok(v6)) if v6.is_empty() => Err(e),
            (Ok(v4), Err(e)) if v4.is_empty() => Err(e),
            (v4, v6) => Ok(v4
                .unwrap_or_default()
                .into_iter()
                .map(IpAddr::V4)
                .chain(v6.unwrap_or_default().into_iter().map(IpAddr::V6))
                .collect()),
        }
    }

    /// The MX records of `name`, lowest preference first; from the cache while its answer
    /// (or its failure) is fresh.
    pub async fn mx(&self, name: &str) -> Result<Vec<Mx>, DnsError> {
        let key = fqdn(name)?;
        let now = Instant::now();
        if let Some(hit) = self.cache().get(&key, now) {
            return hit;
        }
        let (answer, ttl) = match self.ask(name, |r, n| r.mx_lookup(n)).await {
            Ok(Some(l)) => {
                let mut mx = records(&l, |d| match d {
                    RData::MX(m) => Some(Mx {
                        preference: m.preference,
                        exchange: bare(&m.exchange.to_ascii()),
                    }),
                    _ => None,
                });
                mx.sort_by(|a, b| (a.preference, &a.exchange).cmp(&(b.preference, &b.exchange)));
                let ttl = l.valid_until().saturating_duration_since(now);
                (Ok(mx), ttl.clamp(MX_MIN_TTL, MX_MAX_TTL))
            }
            Ok(None) => (Ok(Vec::new()), MX_NEGATIVE_TTL),
            Err(e) => (Err(e), MX_FAILURE_TTL),
        };
        self.cache().put(key, answer.clone(), Instant::now() + ttl);
        answer
    }

    /// What one lookup may take.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// How many MX answers the cache holds (tests, metrics).
    pub fn mx_cached(&self) -> usize {
        self.cache().len()
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, MxCache> {
        // A panic while holding the lock leaves a map that is still a valid cache.
        self.mx_cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One lookup, bounded; `Ok(None)` when the name or the type does not exist.
    async fn ask<'a, F, Fut>(&'a self, name: &str, lookup: F) -> Result<Option<Lookup>, DnsError>
    where
        F: FnOnce(&'a TokioResolver, String) -> Fut,
        Fut: Future<Output = Result<Lookup, NetError>>,
    {
        let name = fqdn(name)?;
        match tokio::time::timeout(self.timeout, lookup(&self.resolver, name)).await {
            Err(_) => Err(DnsError::Timeout(self.timeout)),
            Ok(Ok(l)) => Ok(Some(l)),
            Ok(Err(e)) if e.is_no_records_found() => Ok(None),
            Ok(Err(NetError::Timeout)) => Err(DnsError::Timeout(self.timeout)),
            Ok(Err(e)) => Err(DnsError::Failed(e.to_string())),
        }
    }
}

/// The answers of the type asked (a CNAME on the way is left out).
fn records<T>(l: &Lookup, pick: impl Fn(&RData) -> Option<T>) -> Vec<T> {
    l.answers().iter().filter_map(|r| pick(&r.data)).collect()
}

/// `name` as an absolute, lower-case name (`example.org.`), checked.
fn fqdn(name: &str) -> Result<String, DnsError> {
    let n = name.trim().trim_end_matches('.').to_ascii_lowercase();
    let ok = !n.is_empty()
        && n.len() <= 253
        && n.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if !ok {
        return Err(DnsError::BadName(name.chars().take(80).collect()));
    }
    Ok(format!("{n}."))
}

/// A name as shown and compared: lower-case, no final dot.
fn bare(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

type MxAnswer = Result<Vec<Mx>, DnsError>;

/// MX answers by domain, each until its expiry, at most `capacity` of them.
struct MxCache {
    capacity: usize,
    entries: HashMap<String, (MxAnswer, Instant)>,
}

impl MxCache {
    fn new(capacity: usize) -> MxCache {
        MxCache {
            capacity: capacity.max(1),
            entries: HashMap::new(),
        }
    }

    fn get(&mut self, key: &str, now: Instant) -> Option<MxAnswer> {
        match self.entries.get(key) {
            Some((answer, until)) if *until > now => Some(answer.clone()),
            Some(_) => {
                self.entries.remove(key);
                None
            }
            None => None,
        }
    }

    fn put(&mut self, key: String, answer: MxAnswer, until: Instant) {
        if self.entries.len() >= self.capacity && !self.entries.contains_key(&key) {
            let now = Instant::now();
            self.entries.retain(|_, (_, u)| *u > now);
            if self.entries.len() >= self.capacity {
                let soonest = self
                    .entries
                    .iter()
                    .min_by_key(|(_, (_, u))| *u)
                    .map(|(k, _)| k.clone());
                if let Some(k) = soonest {
                    self.entries.remove(&k);
                }
            }
        }
        self.entries.insert(key, (answer, until));
    }

    fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_asked_whole_and_checked() {
        assert_eq!(fqdn("Example.ORG").unwrap(), "example.org.");
        assert_eq!(
            fqdn("s1._domainkey.example.org.").unwrap(),
            "s1._domainkey.example.org."
        );
        assert!(fqdn("").is_err());
        assert!(fqdn("a..b").is_err());
        assert!(fqdn("a b.org").is_err());
        assert!(fqdn(&format!("{}.org", "a".repeat(64))).is_err());
    }

    #[test]
    fn the_mx_cache_keeps_answers_until_they_expire_and_stays_within_its_size() {
        let mut c = MxCache::new(2);
        let now = Instant::now();
        let mx = |e: &str| {
            Ok(vec![Mx {
                preference: 10,
                exchange: e.into(),
            }])
        };
        c.put("a.".into(), mx("mx.a"), now + Duration::from_secs(60));
        assert_eq!(c.get("a.", now), Some(mx("mx.a")));
        assert_eq!(c.get("a.", now + Duration::from_secs(61)), None, "expired");
        assert_eq!(c.len(), 0, "an expired entry is dropped when met");
        c.put("a.".into(), mx("mx.a"), now + Duration::from_secs(600));
        c.put("b.".into(), mx("mx.b"), now + Duration::from_secs(60));
        c.put(
            "c.".into(),
            Err(DnsError::Timeout(DEFAULT_TIMEOUT)),
            now + Duration::from_secs(300),
        );
        assert_eq!(c.len(), 2, "bounded");
        assert!(
            c.get("b.", now).is_none(),
            "the one closest to expiring went"
        );
        assert!(c.get("a.", now).is_some());
        assert_eq!(
            c.get("c.", now),
            Some(Err(DnsError::Timeout(DEFAULT_TIMEOUT))),
            "failures are remembered too"
        );
    }

    #[test]
    fn dns_can_be_shared_between_tasks() {
        fn shared<T: Clone + Send + Sync + 'static>() {}
        shared::<Dns>();
    }
}
