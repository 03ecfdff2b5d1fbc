//! Per-client limits for the public forms (sign-up, sign-in): each confirmation email we send
//! on a stranger's word spends our sender reputation, and each password guess is one more
//! try. `governor`'s keyed limiter (GCRA, sharded map) does the counting.
//!
//! Memory is bounded: a timer drops clients whose allowance is full again (`retain_recent`),
//! and when the map still holds [`MAX_CLIENTS`] clients (a flood from that many addresses
//! within one period), clients not yet in it share a single allowance until it drains.

use std::{
    net::{IpAddr, Ipv6Addr},
    num::NonZeroU32,
    sync::{Arc, Weak},
    time::Duration,
};

use governor::{
    DefaultKeyedRateLimiter, Quota, RateLimiter,
    clock::{Clock, DefaultClock},
};

/// Clients remembered at most.
pub const MAX_CLIENTS: usize = 100_000;
/// How often clients whose allowance is full again are forgotten.
const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// Where clients go when the map is full.
const OVERFLOW: IpAddr = IpAddr::V6(Ipv6Addr::UNSPECIFIED);

/// This process's per-client limits, shared by the handlers of the public forms.
#[derive(Clone)]
pub(crate) struct Limits {
    pub signup: Option<Arc<ClientLimiter>>,
    pub login: Option<Arc<ClientLimiter>>,
}

pub struct ClientLimiter {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    clock: DefaultClock,
    max_clients: usize,
}

impl ClientLimiter {
    /// `per_hour` requests an hour per client, all of them available at once; 0 = no
    /// limit. Starts the sweeping timer (which ends when the limiter is dropped).
    pub fn per_hour(per_hour: u32) -> Option<Arc<ClientLimiter>> {
        Self::with_capacity(per_hour, MAX_CLIENTS)
    }

    fn with_capacity(per_hour: u32, max_clients: usize) -> Option<Arc<ClientLimiter>> {
        let n = NonZeroU32::new(per_hour)?;
        let l = Arc::new(ClientLimiter {
            limiter: RateLimiter::keyed(Quota::per_hour(n)),
            clock: DefaultClock::default(),
            max_clients,
        });
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(sweep(Arc::downgrade(&l)));
        }
        Some(l)
    }

    /// Takes one request's allowance for `ip`; `Err(wait)` when it has none left. An IPv6
    /// client is its /64: one host is usually given a whole /64 and can pick any address
    /// in it.
    pub fn check(&self, ip: IpAddr) -> Result<(), Duration> {
        let mut key = client_key(ip);
        if self.limiter.len() >= self.max_clients {
            self.limiter.retain_recent();
            if self.limiter.len() >= self.max_clients {
                key = OVERFLOW;
            }
        }
        self.limiter
            .check_key(&key)
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// Clients remembered now.
    pub fn len(&self) -> usize {
        self.limiter.len()
    }

    pub fn is_empty(&self) -> bool {
        self.limiter.is_empty()
    }
}

async fn sweep(l: Weak<ClientLimiter>) {
    loop {
        tokio::time::sleep(SWEEP_EVERY).await;
        let Some(l) = l.upgrade() else { return };
        l.limiter.retain_recent();
        l.limiter.shrink_to_fit();
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
        let l = ClientLimiter::per_hour(3).unwrap();
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        assert!((0..3).all(|_| l.check(a).is_ok()));
        let wait = l.check(a).unwrap_err();
        assert!(
            wait <= Duration::from_secs(1200) && wait > Duration::from_secs(1100),
            "{wait:?}"
        );
        assert!(l.check(b).is_ok(), "another client is not affected");
        assert!(ClientLimiter::per_hour(0).is_none());
    }

    #[test]
    fn an_ipv6_client_is_its_slash_64() {
        let l = ClientLimiter::per_hour(1).unwrap();
        assert!(l.check("2001:db8:1:2::1".parse().unwrap()).is_ok());
        assert!(l.check("2001:db8:1:2:ffff::9".parse().unwrap()).is_err());
        assert!(l.check("2001:db8:1:3::1".parse().unwrap()).is_ok());
        assert!(
            l.check("::ffff:192.0.2.7".parse().unwrap()).is_ok()
                && l.check("192.0.2.7".parse().unwrap()).is_err(),
            "a v4-mapped address is the v4 client"
        );
    }

    #[test]
    fn a_flood_of_clients_stays_within_the_bound() {
        let l = ClientLimiter::with_capacity(2, 1000).unwrap();
        for i in 0..5000u32 {
            let ip = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            let _ = l.check(ip);
        }
        assert!(l.len() <= 1001, "{} clients remembered", l.len());
        // Beyond the bound, newcomers share one allowance: the flood cannot spend more than
        // that, however many addresses it uses.
        let newcomer: IpAddr = "198.51.100.1".parse().unwrap();
        assert!(l.check(newcomer).is_err());
    }
}
