//! Console secrets: argon2id password hashes (computed off the async threads), session ids
//! and API tokens (random; only their SHA-256 is stored), the TOTP second factor (RFC 6238),
//! and the configuration's `admin_token`. Every comparison of a secret is the crate's own
//! constant-time verify (argon2's, hmac's, totp-rs's).
//!
//! - `password`: the length rule and the hashes;
//! - `secrets`: session ids, API tokens and the `admin_token`;
//! - `totp`: the second factor's codes, its `otpauth://` address and QR code.

mod password;
mod secrets;
pub mod totp;

pub use password::{
    MAX_PASSWORD, MIN_PASSWORD, PasswordError, check_new_password, hash_password, verify_password,
};
pub use secrets::{AdminToken, NewSecret, sha256_hex};
