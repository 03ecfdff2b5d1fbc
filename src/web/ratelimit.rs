//! A per-client token bucket for the public sign-up form: each confirmation email we send on
//! a stranger's word spends our sender reputation, so one client gets a handful an hour.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::Mutex,
    time::{Duration, Instant},
};

/// Buckets kept at most; beyond this, full (idle) buckets are dropped.
const MAX_CLIENTS: usize = 100_000;

pub struct RateLimiter {
    /// Requests a client may make at once.
    burst: f64,
    /// Tokens regained per second.
    per_second: f64,
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
}

impl RateLimiter {
    /// `per_hour` requests an hour per client, all of them available at once; 0 = no limit.
    pub fn per_hour(per_hour: u32) -> Option<RateLimiter> {
        (per_hour > 0).then(|| RateLimiter {
            burst: per_hour as f64,
            per_second: per_hour as f64 / 3600.0,
            buckets: Mutex::default(),
        })
    }

    /// Takes a token for `ip`; `Err(wait)` when none is left. An IPv6 client is its /64:
    /// one host is usually given a whole /64 and can pick any address in it.
    pub fn check(&self, ip: IpAddr) -> Result<(), Duration> {
        self.check_at(client_key(ip), Instant::now())
    }

    fn check_at(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let mut b = self.buckets.lock().expect("not poisoned");
        if b.len() >= MAX_CLIENTS {
            let (burst, rate) = (self.burst, self.per_second);
            b.retain(|_, (tokens, at)| {
                *tokens + now.duration_since(*at).as_secs_f64() * rate < burst
            });
        }
        let (tokens, at) = b.entry(ip).or_insert((self.burst, now));
        *tokens =
            (*tokens + now.duration_since(*at).as_secs_f64() * self.per_second).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - *tokens) / self.per_second))
        }
    }
}

fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let bits = u128::from(v6) & (!0u128 << 64);
                IpAddr::V6(bits.into())
            }
        },
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_gets_its_burst_then_waits() {
        let l = RateLimiter::per_hour(3).unwrap();
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        let t = Instant::now();
        assert!((0..3).all(|_| l.check_at(a, t).is_ok()));
        let wait = l.check_at(a, t).unwrap_err();
        assert!(
            wait <= Duration::from_secs(1200) && wait > Duration::from_secs(1100),
            "{wait:?}"
        );
        assert!(l.check_at(b, t).is_ok(), "another client is not affected");
        assert!(
            l.check_at(a, t + Duration::from_secs(1200)).is_ok(),
            "a token comes back"
        );
        assert!(RateLimiter::per_hour(0).is_none());
    }

    #[test]
    fn an_ipv6_client_is_its_slash_64() {
        let l = RateLimiter::per_hour(1).unwrap();
        assert!(l.check("2001:db8:1:2::1".parse().unwrap()).is_ok());
        assert!(l.check("2001:db8:1:2:ffff::9".parse().unwrap()).is_err());
        assert!(l.check("2001:db8:1:3::1".parse().unwrap()).is_ok());
    }
}
