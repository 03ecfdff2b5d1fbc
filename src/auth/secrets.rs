//! Random secrets that are shown once and stored only as their SHA-256 (session ids, API
//! tokens), and the configuration's `admin_token`, checked with hmac's constant-time verify.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// What the store keeps of a session id or an API token: its SHA-256 in lower-case hex.
pub fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// A new random secret (a session id or an API token) and the hash that is stored.
pub struct NewSecret {
    pub value: String,
    pub hash: String,
}

impl NewSecret {
    fn with_prefix(prefix: &str) -> NewSecret {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let value = format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes));
        let hash = sha256_hex(&value);
        NewSecret { value, hash }
    }

    pub fn session() -> NewSecret {
        NewSecret::with_prefix("")
    }

    /// An API token: `nsh_` and 256 random bits. Shown once; the first characters stay
    /// visible to tell tokens apart.
    pub fn api_token() -> NewSecret {
        NewSecret::with_prefix("nsh_")
    }
}

/// The configuration's `admin_token`, kept as an HMAC key so a presented token is checked
/// with hmac's constant-time verify.
pub struct AdminToken {
    expected: Vec<u8>,
    key: [u8; 32],
}

impl AdminToken {
    pub fn new(token: &str) -> AdminToken {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        let expected = Self::mac(&key, token).finalize().into_bytes().to_vec();
        AdminToken { expected, key }
    }

    fn mac(key: &[u8], token: &str) -> Hmac<Sha256> {
        let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("any key length");
        m.update(token.as_bytes());
        m
    }

    pub fn verify(&self, given: &str) -> bool {
        !given.is_empty()
            && Self::mac(&self.key, given)
                .verify_slice(&self.expected)
                .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_token_and_secrets() {
        let t = AdminToken::new("the-admin-token");
        assert!(t.verify("the-admin-token"));
        assert!(!t.verify("the-admin-tokeN"));
        assert!(!t.verify(""));
        let a = NewSecret::api_token();
        assert!(a.value.starts_with("nsh_") && a.value.len() > 40);
        assert_eq!(a.hash, sha256_hex(&a.value));
        assert_ne!(NewSecret::session().value, NewSecret::session().value);
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
