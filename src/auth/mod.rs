//! Console secrets: argon2id password hashes (computed off the async threads), session ids
//! and API tokens (random; only their SHA-256 is stored), the TOTP second factor (RFC 6238),
//! and the configuration's `admin_token`. Every comparison of a secret is the crate's own
//! constant-time verify (argon2's, hmac's, subtle's).

use std::sync::OnceLock;

use anyhow::Context;
use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier, password_hash::SaltString};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Shortest password an account may have.
pub const MIN_PASSWORD: usize = 12;
/// Longest: argon2 takes any length, but a request should not make us hash megabytes.
pub const MAX_PASSWORD: usize = 1024;

/// Why a new password is refused (the console says it in Arabic, the CLI in English).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("the password must have at least 12 characters")]
    TooShort,
    #[error("the password must have at most 1024 characters")]
    TooLong,
}

pub fn check_new_password(pw: &str) -> Result<(), PasswordError> {
    match pw.chars().count() {
        n if n < MIN_PASSWORD => Err(PasswordError::TooShort),
        n if n > MAX_PASSWORD => Err(PasswordError::TooLong),
        _ => Ok(()),
    }
}

/// An argon2id hash (PHC string, with its own random salt), on a blocking thread.
pub async fn hash_password(pw: String) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || {
        let salt = new_salt()?;
        Argon2::default()
            .hash_password(pw.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("cannot hash the password: {e}"))
    })
    .await
    .context("the password hasher panicked")?
}

/// Whether `pw` matches `hash`, on a blocking thread. With no hash (an unknown account) a
/// hash is still checked, so the answer takes as long either way.
pub async fn verify_password(hash: Option<String>, pw: String) -> bool {
    tokio::task::spawn_blocking(move || {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| dummy_hash().to_owned());
        let ok = PasswordHash::new(&hash)
            .map(|h| Argon2::default().verify_password(pw.as_bytes(), &h).is_ok())
            .unwrap_or(false);
        ok && known
    })
    .await
    .unwrap_or(false)
}

/// 128 random bits of salt.
fn new_salt() -> anyhow::Result<SaltString> {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    SaltString::encode_b64(&bytes).map_err(|e| anyhow::anyhow!("cannot make a salt: {e}"))
}

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let Ok(salt) = new_salt() else {
            return String::new();
        };
        Argon2::default()
            .hash_password(b"no account has this password", &salt)
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

pub fn sha256_hex(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
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

/// Time-based one-time codes (RFC 6238: HMAC-SHA1, 30-second steps, 6 digits), as
/// authenticator apps make them.
pub mod totp {
    use hmac::{Hmac, Mac};
    use rand::RngCore;
    use sha1::Sha1;
    use subtle::ConstantTimeEq;

    const STEP: i64 = 30;
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

    /// A new secret: 160 random bits in base32, as apps take it typed or scanned.
    pub fn new_secret() -> String {
        let mut bytes = [0u8; 20];
        rand::rng().fill_bytes(&mut bytes);
        base32(&bytes)
    }

    fn base32(bytes: &[u8]) -> String {
        let mut out = String::new();
        let (mut buf, mut bits) = (0u32, 0);
        for &b in bytes {
            buf = (buf << 8) | b as u32;
            bits += 8;
            while bits >= 5 {
                out.push(ALPHABET[((buf >> (bits - 5)) & 31) as usize] as char);
                bits -= 5;
            }
        }
        if bits > 0 {
            out.push(ALPHABET[((buf << (5 - bits)) & 31) as usize] as char);
        }
        out
    }

    fn unbase32(s: &str) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        let (mut buf, mut bits) = (0u32, 0);
        for c in s.chars().filter(|c| !matches!(c, ' ' | '-' | '=')) {
            let v = ALPHABET
                .iter()
                .position(|&a| a as char == c.to_ascii_uppercase())?;
            buf = (buf << 5) | v as u32;
            bits += 5;
            if bits >= 8 {
                out.push((buf >> (bits - 8)) as u8);
                bits -= 8;
            }
        }
        Some(out)
    }

    /// The code for the 30-second step that holds `unix_secs`.
    pub fn code_at(secret: &str, unix_secs: i64) -> Option<String> {
        let key = unbase32(secret)?;
        let counter = (unix_secs.div_euclid(STEP) as u64).to_be_bytes();
        let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(&key).ok()?;
        mac.update(&counter);
        let h = mac.finalize().into_bytes();
        let off = (h[19] & 0x0f) as usize;
        let bin = u32::from_be_bytes([h[off] & 0x7f, h[off + 1], h[off + 2], h[off + 3]]);
        Some(format!("{:06}", bin % 1_000_000))
    }

    /// Whether `code` is the current code, or the one just before or after (clocks drift).
    pub fn verify(secret: &str, code: &str, unix_secs: i64) -> bool {
        verify_step(secret, code, unix_secs).is_some()
    }

    /// The step (`unix_secs / 30`) whose code `code` is, among the current one and its
    /// neighbours; the caller remembers it so the code is not taken twice.
    pub fn verify_step(secret: &str, code: &str, unix_secs: i64) -> Option<i64> {
        let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
        if code.len() != 6 {
            return None;
        }
        let mut found = None;
        for drift in [-1, 0, 1] {
            let step = unix_secs.div_euclid(STEP) + drift;
            if let Some(expected) = code_at(secret, step * STEP)
                && bool::from(expected.as_bytes().ct_eq(code.as_bytes()))
            {
                found = Some(step);
            }
        }
        found
    }

    /// Whether `s` has the shape of a code (six digits), not of a password (twelve
    /// characters at least): a form may take either.
    pub fn looks_like_code(s: &str) -> bool {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        s.len() == 6 && s.bytes().all(|b| b.is_ascii_digit())
    }

    /// The `otpauth://` address an authenticator app takes.
    pub fn uri(issuer: &str, account: &str, secret: &str) -> String {
        let enc = |s: &str| {
            url::form_urlencoded::byte_serialize(s.as_bytes())
                .collect::<String>()
                .replace('+', "%20")
        };
        format!(
            "otpauth://totp/{}:{}?secret={secret}&issuer={}&algorithm=SHA1&digits=6&period=30",
            enc(issuer),
            enc(account),
            enc(issuer)
        )
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn rfc_6238_vectors() {
            // RFC 6238 appendix B, SHA-1 key "12345678901234567890", last six digits.
            let secret = base32(b"12345678901234567890");
            assert_eq!(secret, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
            for (t, code) in [
                (59, "287082"),
                (1111111109, "081804"),
                (1111111111, "050471"),
                (1234567890, "005924"),
                (2000000000, "279037"),
            ] {
                assert_eq!(code_at(&secret, t).unwrap(), code, "t = {t}");
            }
            assert!(verify(&secret, "081804", 1111111109 + 30));
            assert!(verify(&secret, "081 804", 1111111109));
            assert!(!verify(&secret, "081804", 1111111109 + 90));
            assert!(!verify(&secret, "", 59));
            assert!(!verify("not base32!", "287082", 59));
            assert_eq!(
                verify_step(&secret, "081804", 1111111109 + 30),
                Some(1111111109 / 30)
            );
            assert!(looks_like_code("081 804") && !looks_like_code("a long password"));
            assert_eq!(unbase32(&new_secret()).unwrap().len(), 20);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn passwords_verify_only_themselves() {
        let h = hash_password("correct horse battery".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify_password(Some(h.clone()), "correct horse battery".into()).await);
        assert!(!verify_password(Some(h.clone()), "correct horse batterY".into()).await);
        assert!(!verify_password(None, "correct horse battery".into()).await);
        assert!(!verify_password(Some("garbage".into()), "x".into()).await);
        assert_eq!(check_new_password("short"), Err(PasswordError::TooShort));
        assert_eq!(check_new_password("كلمة مرور طويلة"), Ok(()));
    }

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
    }
}
