//! `nashra dkim keygen`: makes a signing key, writes it where nothing is overwritten, and
//! prints the DNS record to publish. Runs before the configuration is loaded when `--domain`
//! is given, so a key can be made before the rest is configured.

use std::{io::Write, path::PathBuf};

use anyhow::Context;

use super::args::KeyAlgorithm;

pub(super) fn keygen(
    domain: &str,
    selector: &str,
    algorithm: KeyAlgorithm,
    out: Option<PathBuf>,
) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let alg = match algorithm {
        KeyAlgorithm::Rsa => crate::dkim::Algorithm::RsaSha256,
        KeyAlgorithm::Ed25519 => crate::dkim::Algorithm::Ed25519Sha256,
    };
    let pem = crate::dkim::generate(alg)?;
    let key = crate::dkim::Key::from_pem(domain, selector, pem.as_bytes())?;
    let path = out.unwrap_or_else(|| PathBuf::from(format!("{selector}.pem")));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| {
            format!(
                "cannot create {} (an existing key is never overwritten)",
                path.display()
            )
        })?;
    f.write_all(pem.as_bytes())?;
    eprintln!("private key written to {} (keep it secret)", path.display());
    eprintln!("publish this TXT record, then add to your configuration:");
    eprintln!(
        "  [[dkim]]\n  domain = \"{}\"\n  selector = \"{selector}\"\n  private_key_file = \"{}\"\n",
        key.domain,
        path.display()
    );
    let txt = key.txt_record();
    // DNS strings hold 255 bytes at most: a 2048-bit key is published as several.
    let quoted: Vec<String> = txt
        .as_bytes()
        .chunks(250)
        .map(|c| format!("\"{}\"", std::str::from_utf8(c).expect("ASCII")))
        .collect();
    println!("{}. IN TXT ( {} )", key.record_name(), quoted.join(" "));
    Ok(())
}
