//! `nashra doctor`: the DNS records the sending domain needs, the configuration checked
//! against what Gmail, Yahoo and Outlook.com ask of bulk senders (`configured`), and the
//! records as published, looked up (`published`: SPF against the relay, each DKIM key against
//! the private key, DMARC's policy, the bounce domain's MX). `spf`, `dmarc` and `tags` read
//! the records; the lookups go through `crate::dns`.

mod check;
mod configured;
mod dmarc;
mod published;
mod spf;
mod tags;

use std::net::SocketAddr;

use anyhow::bail;

pub use check::{Check, Level};

use crate::{
    config::Settings,
    dkim,
    dns::{Dns, DnsError},
    domain::Mailbox,
};

/// The records to publish and every check, without printing (tests read these). Without a
/// resolver the published records are not looked up, and a check says why.
pub async fn examine(
    s: &Settings,
    dns: Result<&Dns, &DnsError>,
) -> anyhow::Result<(Vec<String>, Vec<Check>)> {
    let (records, mut checks) = configured::examine(s)?;
    let dns = match dns {
        Ok(dns) => dns,
        Err(e) => {
            checks.push(Check::new(
                Level::Warn,
                "published DNS records",
                format!("not looked up: {e}"),
            ));
            return Ok((records, checks));
        }
    };
    let from_domain = Mailbox::parse(&s.newsletter.from)?
        .email
        .domain()
        .to_owned();
    let bounce = s.return_path_base().map(|(_, d)| d);
    let signer = dkim::Signer::from_config(&s.dkim)?;
    let expected = published::Expected {
        return_domain: bounce.clone().unwrap_or_else(|| from_domain.clone()),
        from_domain,
        bounce_domain: bounce,
        relays: s.relays().into_iter().map(|r| r.host).collect(),
        keys: signer.as_ref().map_or(&[], |sg| sg.keys()),
    };
    checks.extend(published::checks(dns, &expected).await);
    Ok((records, checks))
}

/// Prints the records and the checks; fails when a check fails. `nameservers` (from
/// `--nameserver`) replaces `[dns] nameservers` when given.
pub async fn run(settings: &Settings, nameservers: &[SocketAddr]) -> anyhow::Result<()> {
    let nameservers = if nameservers.is_empty() {
        &settings.dns.nameservers[..]
    } else {
        nameservers
    };
    let dns = Dns::new(nameservers);
    let (records, checks) = examine(settings, dns.as_ref()).await?;
    println!("DNS records to publish:");
    for r in &records {
        println!("  {r}");
    }
    println!("\nWhat Gmail, Yahoo and Outlook.com ask of bulk senders, and what DNS says:");
    for c in &checks {
        println!("  {}  {}: {}", c.level.tag(), c.what, c.detail);
    }
    let failed = checks.iter().filter(|c| c.level == Level::Fail).count();
    if failed > 0 {
        bail!("{failed} check(s) failed");
    }
    Ok(())
}
