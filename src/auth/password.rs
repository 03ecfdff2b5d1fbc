//! Console passwords: the length rule, and argon2id hashes computed off the async threads
//! (a hash takes most of a second unoptimised, tens of milliseconds optimised).

use std::sync::OnceLock;

use anyhow::Context;
use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier, password_hash::SaltString};
use rand::RngCore;

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
}
