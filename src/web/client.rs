//! Who the client is, for per-client limits.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;

use crate::config::Server;

/// The client's address: the TCP peer, or, behind `server.trusted_proxy_hops` proxies of
/// ours, the address that many hops from the right end of `server.client_ip_header`.
///
/// Each proxy appends the address it received the request from, so only the right-most
/// entries were written by proxies we run; whatever the client put to their left is
/// forgeable and ignored. A header with fewer entries than that did not come through our
/// proxies, and the peer address counts instead.
///
/// The header counts only when the peer is one of `server.trusted_proxies`: a client that
/// reaches the port directly would otherwise name any address it likes.
pub fn client_ip(cfg: &Server, peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
    if cfg.client_ip_header.is_empty() || !cfg.trusted_proxies.iter().any(|c| c.contains(peer.ip()))
    {
        return peer.ip();
    }
    // Several header lines count as one comma-separated list, in order.
    let hops: Vec<&str> = headers
        .get_all(cfg.client_ip_header.as_str())
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .collect();
    hops.len()
        .checked_sub(cfg.trusted_proxy_hops)
        .and_then(|i| hops.get(i))
        .and_then(|v| parse_ip(v))
        .unwrap_or(peer.ip())
}

/// `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1` or `[2001:db8::1]:443`.
fn parse_ip(v: &str) -> Option<IpAddr> {
    v.parse::<IpAddr>()
        .ok()
        .or_else(|| v.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The defaults (loopback proxies) with this header and hop count; the tests' peers in
    /// 10.0.0.0/8 are proxies too.
    fn cfg(header: &str, hops: usize) -> Server {
        let mut s = crate::config::Settings::from_toml_over_defaults("")
            .unwrap()
            .server;
        s.client_ip_header = header.into();
        s.trusted_proxy_hops = hops;
        s.trusted_proxies.push("10.0.0.0/8".parse().unwrap());
        s
    }

    fn headers(name: &str, values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(
                axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn the_forgeable_left_end_is_ignored() {
        let peer: SocketAddr = "10.0.0.1:5000".parse().unwrap();
        let c = cfg("X-Forwarded-For", 1);
        let h = headers("x-forwarded-for", &["6.6.6.6, 203.0.113.7"]);
        assert_eq!(
            client_ip(&c, peer, &h),
            "203.0.113.7".parse::<IpAddr>().unwrap()
        );
        let h = headers("x-forwarded-for", &["6.6.6.6", "203.0.113.7"]);
        assert_eq!(
            client_ip(&c, peer, &h),
            "203.0.113.7".parse::<IpAddr>().unwrap()
        );
        // Two proxies of ours: the client is second from the right.
        let c2 = cfg("X-Forwarded-For", 2);
        let h = headers("x-forwarded-for", &["6.6.6.6, 203.0.113.7, 10.0.0.9"]);
        assert_eq!(
            client_ip(&c2, peer, &h),
            "203.0.113.7".parse::<IpAddr>().unwrap()
        );
        // Not through our proxies at all, or no header configured: the peer.
        assert_eq!(
            client_ip(&c2, peer, &headers("x-forwarded-for", &["1.1.1.1"])),
            peer.ip()
        );
        assert_eq!(client_ip(&cfg("", 1), peer, &h), peer.ip());
        let h = headers("x-forwarded-for", &["junk"]);
        assert_eq!(client_ip(&c, peer, &h), peer.ip());
    }

    #[test]
    fn the_header_counts_only_from_a_trusted_proxy() {
        let h = headers("x-forwarded-for", &["203.0.113.7"]);
        let mut c = cfg("X-Forwarded-For", 1);
        // By default loopback only: a proxy on this machine.
        let local: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let outsider: SocketAddr = "198.51.100.9:5000".parse().unwrap();
        assert_eq!(
            client_ip(&c, local, &h),
            "203.0.113.7".parse::<IpAddr>().unwrap()
        );
        assert_eq!(client_ip(&c, outsider, &h), outsider.ip(), "forged");
        c.trusted_proxies = vec!["10.0.0.0/8".parse().unwrap()];
        let proxy: SocketAddr = "10.1.2.3:5000".parse().unwrap();
        assert_eq!(
            client_ip(&c, proxy, &h),
            "203.0.113.7".parse::<IpAddr>().unwrap()
        );
        assert_eq!(client_ip(&c, local, &h), local.ip());
        let mapped: SocketAddr = "[::ffff:10.1.2.3]:5000".parse().unwrap();
        assert_eq!(
            client_ip(&c, mapped, &h),
            "203.0.113.7".parse::<IpAddr>().unwrap()
        );
        c.trusted_proxies.clear();
        assert_eq!(client_ip(&c, proxy, &h), proxy.ip(), "none trusted");
    }
}
