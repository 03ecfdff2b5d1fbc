//! DKIM keys: reading a PEM private key, the TXT record that publishes its public half, and
//! new keys for `nashra dkim keygen`.
//!
//! Signing runs on `ring` (already here for TLS, and the fast RSA); the DER and PEM around the
//! keys are written by the `rsa` crate's `pkcs1`/`pkcs8` traits, not by hand.

use anyhow::{Context, bail};
use base64::{Engine, engine::general_purpose::STANDARD};
use ring::{
    rand::SystemRandom,
    signature::{self, Ed25519KeyPair, KeyPair, RsaKeyPair},
};
use rsa::{
    pkcs1::DecodeRsaPublicKey,
    pkcs8::{
        EncodePrivateKey, EncodePublicKey, LineEnding, PrivateKeyInfo, SecretDocument,
        der::pem::PemLabel,
    },
};
use rustls_pki_types::{PrivateKeyDer, pem::PemObject};
use sha2::{Digest, Sha256};

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
            // `p=` for `k=rsa` is a SubjectPublicKeyInfo; ring hands out the bare PKCS#1 key.
            Private::Rsa(k) => STANDARD.encode(
                rsa::RsaPublicKey::from_pkcs1_der(k.public().as_ref())
                    .context("the RSA public key")?
                    .to_public_key_der()
                    .context("the RSA public key")?
                    .as_bytes(),
            ),
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

    /// The public key as `p=` publishes it, decoded: a SubjectPublicKeyInfo (RSA) or the 32
    /// bytes of an Ed25519 key. `nashra doctor` compares the published one with it.
    pub fn public_key_der(&self) -> Vec<u8> {
        STANDARD
            .decode(&self.public_b64)
            .expect("encoded by from_pem")
    }

    pub fn record_name(&self) -> String {
        format!("{}._domainkey.{}", self.selector, self.domain)
    }

    /// The `b=` signature over the canonical `data` (signed headers, then the
    /// DKIM-Signature header itself with an empty `b=`).
    pub(super) fn sign(&self, data: &[u8]) -> Vec<u8> {
        match &self.private {
            Private::Rsa(k) => {
                let mut sig = vec![0; k.public().modulus_len()];
                k.sign(
                    &signature::RSA_PKCS1_SHA256,
                    &SystemRandom::new(),
                    data,
                    &mut sig,
                )
                .expect("RSA signing with a loaded key");
                sig
            }
            // RFC 8463: Ed25519 signs the SHA-256 hash of the data.
            Private::Ed25519(k) => k.sign(&Sha256::digest(data)).as_ref().to_vec(),
        }
    }
}

/// A new key as PKCS#8 PEM: RSA-2048 or Ed25519.
pub fn generate(algorithm: Algorithm) -> anyhow::Result<String> {
    let pem = match algorithm {
        Algorithm::RsaSha256 => rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048)
            .context("RSA key generation")?
            .to_pkcs8_pem(LineEnding::LF)
            .context("PEM encoding")?,
        Algorithm::Ed25519Sha256 => {
            let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
                .map_err(|_| anyhow::anyhow!("Ed25519 key generation failed"))?;
            // Read back as `PrivateKeyInfo`, so what ring made is checked to be PKCS#8
            // before it is written.
            let info = PrivateKeyInfo::try_from(doc.as_ref()).context("Ed25519 PKCS#8")?;
            SecretDocument::try_from(&info)
                .context("Ed25519 PKCS#8")?
                .to_pem(PrivateKeyInfo::PEM_LABEL, LineEnding::LF)
                .context("PEM encoding")?
        }
    };
    Ok(pem.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_written_as_pkcs8_pem_and_published_as_spki() {
        for alg in [Algorithm::RsaSha256, Algorithm::Ed25519Sha256] {
            let pem = generate(alg).unwrap();
            assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{pem}");
            assert!(pem.ends_with("\n-----END PRIVATE KEY-----\n"), "{pem}");
            assert!(pem.lines().all(|l| l.len() <= 64));
            let key = Key::from_pem("Example.org", "s1", pem.as_bytes()).unwrap();
            assert_eq!(key.algorithm(), alg);
            assert_eq!(key.domain, "example.org");
            assert_eq!(key.record_name(), "s1._domainkey.example.org");
        }
        let rsa = Key::from_pem(
            "e.org",
            "s",
            generate(Algorithm::RsaSha256).unwrap().as_bytes(),
        )
        .unwrap();
        // rsaEncryption's AlgorithmIdentifier, then a 2048-bit modulus.
        assert!(
            rsa.txt_record()
                .starts_with("v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"),
            "{}",
            rsa.txt_record()
        );
        let ed = Key::from_pem(
            "e.org",
            "s",
            generate(Algorithm::Ed25519Sha256).unwrap().as_bytes(),
        )
        .unwrap();
        let p = ed.txt_record();
        let p = p.strip_prefix("v=DKIM1; k=ed25519; p=").unwrap();
        assert_eq!(STANDARD.decode(p).unwrap().len(), 32);
    }
}
