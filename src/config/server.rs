//! `[server]`: where the HTTP server listens, the public base of every link, and the limits
//! that keep one client or a slow proxy from taking it over.

use std::{net::SocketAddr, time::Duration};

use anyhow::bail;
use secrecy::SecretString;
use serde::Deserialize;

use crate::domain::Cidr;

/// Every key's default is in `config/default.toml`, the layer every configuration starts from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Server {
    pub bind: SocketAddr,
    /// Base of every link we put in a message; must be reachable by readers.
    pub public_url: String,
    /// Sign-ups one client may make per hour (0 = no limit).
    pub signups_per_hour: u32,
    /// A sign-up form posted back sooner than this after it was served was filled by a
    /// program: it gets the usual answer and nothing is stored.
    #[serde(with = "humantime_serde")]
    pub min_fill_time: Duration,
    /// Behind a reverse proxy, the header carrying the client's address ("X-Forwarded-For",
    /// "X-Real-IP"); empty = the TCP peer.
    pub client_ip_header: String,
    /// How many proxies of yours append to that header. The client is the address that many
    /// hops from its right end: everything to the left of it was written by the client and
    /// proves nothing.
    pub trusted_proxy_hops: usize,
    /// The proxies (CIDR ranges) whose `client_ip_header` is believed: from any other peer
    /// the header is the client's own word and the peer's address counts. Loopback by
    /// default (a proxy on the same machine).
    pub trusted_proxies: Vec<Cidr>,
    /// A client must send a request's headers within this (also bounds an idle keep-alive).
    #[serde(with = "humantime_serde")]
    pub header_timeout: Duration,
    /// A request, body included, must be answered within this.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Open connections at most; beyond, new ones are closed at once.
    pub max_connections: usize,
    /// When set, `/metrics` answers only `Authorization: Bearer <this>`; empty = open, for a
    /// scraper on a private network.
    pub metrics_token: SecretString,
}

impl Server {
    /// Whether readers reach this server: an https public URL or a bind beyond loopback (the
    /// development secrets are refused then, see `Settings::validate`).
    pub(super) fn faces_readers(&self) -> bool {
        self.public_url.starts_with("https://") || !self.bind.ip().is_loopback()
    }

    pub(super) fn check(&self) -> anyhow::Result<()> {
        let public = &self.public_url;
        if !(public.starts_with("http://") || public.starts_with("https://")) {
            bail!("server.public_url: `{public}` must start with http:// or https://");
        }
        if self.trusted_proxy_hops == 0 {
            bail!("server.trusted_proxy_hops: must be at least 1");
        }
        if self.max_connections < 16 {
            bail!("server.max_connections: must be at least 16");
        }
        if self.header_timeout.is_zero() || self.request_timeout.is_zero() {
            bail!("server.header_timeout / server.request_timeout: must be more than 0");
        }
        Ok(())
    }
}
