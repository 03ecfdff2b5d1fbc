//! `[dns]`: which nameservers Nashra asks when it looks records up itself (`nashra doctor`'s
//! SPF, DKIM, DMARC and MX checks). None = the system's (`/etc/resolv.conf`).

use std::net::SocketAddr;

use serde::Deserialize;

/// Every key's default is in `config/default.toml`, the layer every configuration starts from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dns {
    /// `"ip:port"` each, asked over UDP (TCP for long answers); empty = the system's.
    pub nameservers: Vec<SocketAddr>,
}
