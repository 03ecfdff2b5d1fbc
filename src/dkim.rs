//! DKIM signatures (RFC 6376), relaxed/relaxed, with RSA-SHA256 and Ed25519-SHA256 (RFC 8463).
//!
//! Mailbox providers want bulk mail signed by a domain aligned with From, and the one-click
//! unsubscribe headers covered by that signature (RFC 8058), so that nobody on the way can
//! swap the link. Every configured key adds one `DKIM-Signature` header.
//!
//! The signing is our own few lines over `ring` (already here for TLS) rather than a DKIM
//! crate: the messages are ours, so the canonical body is almost always the body itself
//! (base64 lines, no runs of spaces), which lets the body hash run at memory speed; the RSA
//! operation is what costs. Tests verify with dkimpy, which shares nothing with this code.
//!
//! Signing is CPU work (~1 ms for RSA-2048): callers run it on blocking threads.

use std::borrow::Cow;

use anyhow::{Context, bail};
use base64::{Engine, engine::general_purpose::STANDARD};
use ring::{
    rand::SystemRandom,
    signature::{self, Ed25519KeyPair, KeyPair, RsaKeyPair},
};
use rustls_pki_types::{PrivateKeyDer, pem::PemObject};
use sha2::{Digest, Sha256};

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    RsaSha256,
    Ed25519Sha256,
}

impl Algorithm {
    pub fn tag(self) -> &'static str {
        match self {
            Algorithm::RsaSha256 => "rsa-sha256",
            Algorithm::Ed25519Sha256 => "ed25519-sha256",
        }
    }

    pub fn parse(s: &str) -> anyhow::Result<Algorithm> {
        match s {
            "rsa-sha256" | "rsa" => Ok(Algorithm::RsaSha256),
            "ed25519-sha256" | "ed25519" => Ok(Algorithm::Ed25519Sha256),
            other => bail!("unknown DKIM algorithm `{other}` (rsa-sha256 or ed25519-sha256)"),
        }
    }
}

enum Private {
    Rsa(RsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

/// One signing key and the domain and selector it signs for.
pub struct Key {
    pub domain: String,
    pub selector: String,
    private: Private,
    /// The `p=` value of the DNS record.
    public_b64: String,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Key({}, {}._domainkey.{})",
            self.algorithm().tag(),
            self.selector,
            self.domain
        )
    }
}

impl Key {
    /// Reads a PEM private key: RSA (PKCS#1 or PKCS#8, at least 2048 bits) or Ed25519 (PKCS#8).
    pub fn from_pem(domain: &str, selector: &str, pem: &[u8]) -> anyhow::Result<Key> {
        let der = PrivateKeyDer::from_pem_slice(pem)
            .map_err(|e| anyhow::anyhow!("not a PEM private key ({e})"))?;
        let private = match &der {
            PrivateKeyDer::Pkcs1(k) => Private::Rsa(
                RsaKeyPair::from_der(k.secret_pkcs1_der())
                    .map_err(|e| anyhow::anyhow!("RSA key refused: {e} (2048 to 4096 bits)"))?,
            ),
            PrivateKeyDer::Pkcs8(k) => match RsaKeyPair::from_pkcs8(k.secret_pkcs8_der()) {
                Ok(k) => Private::Rsa(k),
                Err(rsa_err) => Private::Ed25519(
                    Ed25519KeyPair::from_pkcs8_maybe_unchecked(k.secret_pkcs8_der()).map_err(
                        |_| {
                            anyhow::anyhow!(
                                "neither an RSA key of 2048 to 4096 bits ({rsa_err}) nor an Ed25519 key"
                            )
                        },
                    )?,
                ),
            },
            _ => bail!("an EC key cannot sign DKIM: use RSA (2048 bits) or Ed25519"),
        };
        let public_b64 = match &private {
            Private::Rsa(k) => STANDARD.encode(spki_rsa(k.public().as_ref())),
            Private::Ed25519(k) => STANDARD.encode(k.public_key().as_ref()),
        };
        if domain.is_empty() || selector.is_empty() {
            bail!("a DKIM key needs a domain and a selector");
        }
        Ok(Key {
            domain: domain.to_ascii_lowercase(),
            selector: selector.to_owned(),
            private,
            public_b64,
        })
    }

    pub fn algorithm(&self) -> Algorithm {
        match self.private {
            Private::Rsa(_) => Algorithm::RsaSha256,
            Private::Ed25519(_) => Algorithm::Ed25519Sha256,
        }
    }

    /// The TXT record to publish at `<selector>._domainkey.<domain>`.
    pub fn txt_record(&self) -> String {
        let k = match self.algorithm() {
            Algorithm::RsaSha256 => "rsa",
            Algorithm::Ed25519Sha256 => "ed25519",
        };
        format!("v=DKIM1; k={k}; p={}", self.public_b64)
    }

    pub fn record_name(&self) -> String {
        format!("{}._domainkey.{}", self.selector, self.domain)
    }
}

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
            let sig = match &key.private {
                Private::Rsa(k) => {
                    let mut sig = vec![0; k.public().modulus_len()];
                    k.sign(
                        &signature::RSA_PKCS1_SHA256,
                        &SystemRandom::new(),
                        &signed,
                        &mut sig,
                    )
                    .expect("RSA signing with a loaded key");
                    sig
                }
                // RFC 8463: Ed25519 signs the SHA-256 hash of the data.
                Private::Ed25519(k) => k.sign(&Sha256::digest(&signed)).as_ref().to_vec(),
            };
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

/// Header block (ending with its last CRLF) and body.
fn split(message: &[u8]) -> (&[u8], &[u8]) {
    match memchr::memmem::find(message, b"\r\n\r\n") {
        Some(i) => (&message[..i + 2], &message[i + 4..]),
        None => (message, b""),
    }
}

/// Header fields with their folding, without the final CRLF.
fn parse_fields(block: &[u8]) -> Vec<&[u8]> {
    let mut fields = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while let Some(p) = memchr::memmem::find(&block[i..], b"\r\n") {
        let end = i + p;
        let next = block.get(end + 2);
        if !matches!(next, Some(b' ') | Some(b'\t')) {
            if end > start {
                fields.push(&block[start..end]);
            }
            start = end + 2;
        }
        i = end + 2;
    }
    fields
}

fn field_name(f: &[u8]) -> &[u8] {
    let colon = f.iter().position(|&b| b == b':').unwrap_or(f.len());
    trim_wsp(&f[..colon])
}

fn trim_wsp(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t' | b'\r' | b'\n', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t' | b'\r' | b'\n'] = s {
        s = rest;
    }
    s
}

/// RFC 6376 3.4.2: lower-case name, unfolded value, runs of whitespace as one space, none at
/// the ends or around the colon.
fn relaxed_header(out: &mut Vec<u8>, field: &[u8]) {
    let colon = field.iter().position(|&b| b == b':').unwrap_or(field.len());
    out.extend(trim_wsp(&field[..colon]).iter().map(u8::to_ascii_lowercase));
    out.push(b':');
    let value = trim_wsp(field.get(colon + 1..).unwrap_or(b""));
    let mut space = false;
    for &b in value {
        match b {
            b'\r' | b'\n' => {}
            b' ' | b'\t' => space = true,
            _ => {
                if space {
                    out.push(b' ');
                    space = false;
                }
                out.push(b);
            }
        }
    }
}

/// RFC 6376 3.4.4. Our own bodies need no change but the trailing empty lines, which the
/// quick check sees without copying.
fn relaxed_body(body: &[u8]) -> Cow<'_, [u8]> {
    // One pass over the (rare) whitespace: a tab, or a space before a space, a line end or
    // the end, is what relaxed canonicalisation would change.
    let plain = memchr::memchr2_iter(b' ', b'\t', body)
        .all(|i| body[i] == b' ' && !matches!(body.get(i + 1), None | Some(b' ' | b'\t' | b'\r')));
    let body: Cow<'_, [u8]> = if plain {
        Cow::Borrowed(body)
    } else {
        let mut out = Vec::with_capacity(body.len());
        for line in body.split_inclusive(|&b| b == b'\n') {
            let (content, eol) = match line.strip_suffix(b"\r\n") {
                Some(c) => (c, true),
                None => (line, false),
            };
            let mut space = false;
            for &b in content {
                if b == b' ' || b == b'\t' {
                    space = true;
                } else {
                    if space {
                        out.push(b' ');
                        space = false;
                    }
                    out.push(b);
                }
            }
            if eol {
                out.extend_from_slice(b"\r\n");
            }
        }
        Cow::Owned(out)
    };
    let mut end = body.len();
    while body[..end].ends_with(b"\r\n\r\n") {
        end -= 2;
    }
    if end == 2 && &body[..2] == b"\r\n" {
        end = 0;
    }
    if end == 0 {
        return Cow::Borrowed(b"");
    }
    if !body[..end].ends_with(b"\r\n") {
        let mut v = body[..end].to_vec();
        v.extend_from_slice(b"\r\n");
        return Cow::Owned(v);
    }
    match body {
        Cow::Borrowed(b) => Cow::Borrowed(&b[..end]),
        Cow::Owned(mut v) => {
            v.truncate(end);
            Cow::Owned(v)
        }
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

/// SubjectPublicKeyInfo around a PKCS#1 RSAPublicKey: what `p=` carries for `k=rsa`.
fn spki_rsa(pkcs1: &[u8]) -> Vec<u8> {
    // AlgorithmIdentifier { rsaEncryption, NULL }
    const ALG: &[u8] = &[
        0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
    ];
    let mut bits = vec![0u8];
    bits.extend_from_slice(pkcs1);
    let bit_string = der(0x03, &bits);
    let mut inner = ALG.to_vec();
    inner.extend_from_slice(&bit_string);
    der(0x30, &inner)
}

fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let bytes: Vec<u8> = n
            .to_be_bytes()
            .iter()
            .copied()
            .skip_while(|&b| b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend_from_slice(&bytes);
    }
    out.extend_from_slice(content);
    out
}

/// A new key as PKCS#8 PEM: RSA-2048 or Ed25519.
pub fn generate(algorithm: Algorithm) -> anyhow::Result<String> {
    match algorithm {
        Algorithm::RsaSha256 => {
            use rsa::pkcs8::{EncodePrivateKey, LineEnding};
            let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048)
                .context("RSA key generation")?;
            Ok(key
                .to_pkcs8_pem(LineEnding::LF)
                .context("PEM encoding")?
                .to_string())
        }
        Algorithm::Ed25519Sha256 => {
            let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
                .map_err(|_| anyhow::anyhow!("Ed25519 key generation failed"))?;
            Ok(pem("PRIVATE KEY", doc.as_ref()))
        }
    }
}

fn pem(label: &str, der: &[u8]) -> String {
    let b = STANDARD.encode(der);
    let mut s = format!("-----BEGIN {label}-----\n");
    for chunk in b.as_bytes().chunks(64) {
        s.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        s.push('\n');
    }
    s.push_str(&format!("-----END {label}-----\n"));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_canonicalised_as_rfc_6376_says() {
        assert_eq!(&*relaxed_body(b"abc\r\n\r\n\r\n"), b"abc\r\n");
        assert_eq!(&*relaxed_body(b"a  b \t\r\nc\r\n"), b"a b\r\nc\r\n");
        assert_eq!(&*relaxed_body(b"abc"), b"abc\r\n");
        assert_eq!(&*relaxed_body(b"\r\n\r\n"), b"");
        assert_eq!(&*relaxed_body(b""), b"");
        // The 0.13 mail-auth bug: lines of only whitespace at the end are empty lines.
        assert_eq!(&*relaxed_body(b"abc\r\n   \r\n\t\r\n"), b"abc\r\n");
    }

    #[test]
    fn headers_are_canonicalised_as_rfc_6376_says() {
        let mut out = Vec::new();
        relaxed_header(&mut out, b"SubJect : A  \r\n\t b \t");
        assert_eq!(out, b"subject:A b");
        let fields = parse_fields(b"A: 1\r\nB: 2\r\n 3\r\nC:4\r\n");
        assert_eq!(fields, vec![&b"A: 1"[..], b"B: 2\r\n 3", b"C:4"]);
    }

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
