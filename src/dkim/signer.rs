//! The signer: every configured key, and the `DKIM-Signature` headers it puts in front of a
//! message.
//!
//! Which headers are signed, and how often, is the decision that matters here (RFC 8058 wants
//! the unsubscribe headers covered); the bytes they are reduced to are `canon`'s, the
//! signature itself `keys`'.

use anyhow::{Context, bail};
use base64::{Engine, engine::general_purpose::STANDARD};
use sha2::{Digest, Sha256};

use super::{
    canon::{field_name, parse_fields, relaxed_body, relaxed_header, split},
    keys::{Algorithm, Key},
};
use crate::config::DkimKeyConfig;

/// Headers signed when present, in this order. Each is also listed once more than it occurs
/// ("over-signed"), so that an extra copy added on the way breaks the signature instead of
/// being shown to the reader: the To, the Subject and the unsubscribe link cannot be swapped
/// or doubled.
pub const SIGNED_HEADERS: &[&str] = &[
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "MIME-Version",
    "Content-Type",
    "Reply-To",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "Feedback-ID",
];

/// Every configured key; signs a message once per key.
#[derive(Debug, Default)]
pub struct Signer {
    keys: Vec<Key>,
}

impl Signer {
    pub fn new(keys: Vec<Key>) -> Signer {
        Signer { keys }
    }

    /// Loads the `[[dkim]]` keys; `None` when there are none.
    pub fn from_config(cfg: &[DkimKeyConfig]) -> anyhow::Result<Option<Signer>> {
        let mut keys = Vec::new();
        for (i, c) in cfg.iter().enumerate() {
            let what = format!("dkim[{i}] ({}._domainkey.{})", c.selector, c.domain);
            let pem = match (&c.private_key_file, &c.private_key_env) {
                (Some(f), None) => std::fs::read(f)
                    .with_context(|| format!("{what}: cannot read {}", f.display()))?,
                (None, Some(var)) => std::env::var(var)
                    .with_context(|| format!("{what}: environment variable {var} is not set"))?
                    .into_bytes(),
                _ => bail!("{what}: give exactly one of private_key_file and private_key_env"),
            };
            let key = Key::from_pem(&c.domain, &c.selector, &pem)
                .with_context(|| format!("{what}: private key"))?;
            if let Some(a) = &c.algorithm {
                let want = Algorithm::parse(a).with_context(|| format!("{what}: algorithm"))?;
                if want != key.algorithm() {
                    bail!(
                        "{what}: algorithm = \"{}\" but the key is {}",
                        want.tag(),
                        key.algorithm().tag()
                    );
                }
            }
            keys.push(key);
        }
        if keys.is_empty() {
            return Ok(None);
        }
        if !keys.iter().any(|k| k.algorithm() == Algorithm::RsaSha256) {
            bail!(
                "dkim: an RSA key is needed (most receivers verify only rsa-sha256); Ed25519 goes beside it"
            );
        }
        Ok(Some(Signer { keys }))
    }

    pub fn keys(&self) -> &[Key] {
        &self.keys
    }

    /// Whether `domain` (From's) is aligned with a signing domain: the same, or one a
    /// subdomain of the other (DMARC's relaxed alignment, organisational domains taken as
    /// the shorter of the two).
    pub fn aligned(&self, domain: &str) -> bool {
        let d = domain.to_ascii_lowercase();
        self.keys.iter().any(|k| {
            d == k.domain || d.ends_with(&format!(".{}", k.domain)) || {
                k.domain.ends_with(&format!(".{d}"))
            }
        })
    }

    /// `message` with a `DKIM-Signature` header per key in front. `message` must be a whole
    /// RFC 5322 message with CRLF line endings.
    pub fn sign(&self, message: &[u8], now_unix: i64) -> Vec<u8> {
        let (headers, body) = split(message);
        let bh = STANDARD.encode(Sha256::digest(relaxed_body(body)));
        let fields = parse_fields(headers);
        let mut h_names: Vec<&str> = Vec::new();
        let mut data = Vec::with_capacity(1024);
        for name in SIGNED_HEADERS {
            // Instances are taken from the bottom up (RFC 6376 5.4.2); one more listing
            // than there are instances signs the absence of another.
            let present: Vec<&&[u8]> = fields
                .iter()
                .rev()
                .filter(|f| field_name(f).eq_ignore_ascii_case(name.as_bytes()))
                .collect();
            for f in &present {
                relaxed_header(&mut data, f);
                data.extend_from_slice(b"\r\n");
                h_names.push(name);
            }
            h_names.push(name);
        }
        let h = fold_list(&h_names);
        let mut out = Vec::with_capacity(message.len() + 512 * self.keys.len());
        for key in &self.keys {
            let mut header = format!(
                "DKIM-Signature: v=1; a={}; c=relaxed/relaxed; d={};\r\n s={}; t={now_unix};\r\n h={h};\r\n bh={bh};\r\n b=",
                key.algorithm().tag(),
                key.domain,
                key.selector,
            );
            let mut signed = data.clone();
            relaxed_header(&mut signed, header.as_bytes());
            let sig = key.sign(&signed);
            let b = STANDARD.encode(sig);
            for (i, chunk) in b.as_bytes().chunks(72).enumerate() {
                if i > 0 {
                    header.push_str("\r\n ");
                }
                header.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
            }
            header.push_str("\r\n");
            out.extend_from_slice(header.as_bytes());
        }
        out.extend_from_slice(message);
        out
    }
}

/// `a:b:c` folded before it gets long.
fn fold_list(names: &[&str]) -> String {
    let mut s = String::new();
    let mut line = 3;
    for (i, n) in names.iter().enumerate() {
        if i > 0 {
            s.push(':');
            line += 1;
            if line + n.len() > 70 {
                s.push_str("\r\n ");
                line = 1;
            }
        }
        s.push_str(n);
        line += n.len();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dkim::keys::generate;

    #[test]
    fn both_kinds_of_key_load_and_sign() {
        for alg in [Algorithm::RsaSha256, Algorithm::Ed25519Sha256] {
            let pem = generate(alg).unwrap();
            let key = Key::from_pem("Example.org", "s1", pem.as_bytes()).unwrap();
            assert_eq!(key.algorithm(), alg);
            assert!(key.txt_record().starts_with("v=DKIM1; k="));
            let signer = Signer::new(vec![key]);
            let out = signer.sign(b"From: a@example.org\r\nTo: b@example.net\r\n\r\nhi\r\n", 1);
            let text = String::from_utf8(out).unwrap();
            assert!(text.starts_with(&format!("DKIM-Signature: v=1; a={};", alg.tag())));
            assert!(text.contains("d=example.org;"));
            assert!(text.ends_with("From: a@example.org\r\nTo: b@example.net\r\n\r\nhi\r\n"));
        }
        assert!(Signer::new(vec![]).keys().is_empty());
    }

    #[test]
    fn alignment_is_relaxed() {
        let pem = generate(Algorithm::Ed25519Sha256).unwrap();
        let s = Signer::new(vec![
            Key::from_pem("example.org", "s", pem.as_bytes()).unwrap(),
        ]);
        assert!(s.aligned("example.org"));
        assert!(s.aligned("News.Example.org"));
        assert!(!s.aligned("example.net"));
        assert!(!s.aligned("badexample.org"));
    }
}
