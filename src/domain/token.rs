//! Signed links: confirm and unsubscribe tokens.
//!
//! A token is `base64url(kind:subscriber:issued).base64url(HMAC-SHA256(secret, payload)[..16])`.
//! Nothing is stored for it: the signature proves we issued it, and the store decides whether
//! it still means anything (a confirm token only confirms the sign-up it was issued for).
//! 128 bits of MAC is far beyond what an online guesser can reach.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use sha2::Sha256;

const MAC_LEN: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// Double opt-in link; `issued` is the sign-up time it belongs to.
    Confirm,
    /// One-click unsubscribe; never expires, since old digests keep their links.
    Unsubscribe,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token {
    pub kind: TokenKind,
    pub subscriber_id: i64,
    pub issued: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("malformed token")]
    Malformed,
    #[error("bad signature")]
    BadSignature,
    #[error("token of another kind")]
    WrongKind,
}

#[derive(Clone)]
pub struct Tokens {
    key: Vec<u8>,
}

impl Tokens {
    pub fn new(secret: &str) -> Tokens {
        Tokens {
            key: secret.as_bytes().to_vec(),
        }
    }

    fn mac(&self, payload: &[u8]) -> [u8; 32] {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(payload);
        mac.finalize().into_bytes().into()
    }

    pub fn sign(&self, t: Token) -> String {
        let k = match t.kind {
            TokenKind::Confirm => 'c',
            TokenKind::Unsubscribe => 'u',
        };
        let payload = format!("{k}:{}:{}", t.subscriber_id, t.issued);
        let mac = self.mac(payload.as_bytes());
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&payload),
            URL_SAFE_NO_PAD.encode(&mac[..MAC_LEN])
        )
    }

    pub fn unsubscribe(&self, subscriber_id: i64) -> String {
        self.sign(Token {
            kind: TokenKind::Unsubscribe,
            subscriber_id,
            issued: 0,
        })
    }

    pub fn confirm(&self, subscriber_id: i64, issued: i64) -> String {
        self.sign(Token {
            kind: TokenKind::Confirm,
            subscriber_id,
            issued,
        })
    }

    /// The key that opens a test send's web copy, which the public archive does not list.
    pub fn archive(&self, digest_id: i64) -> String {
        let mac = self.mac(format!("a:{digest_id}").as_bytes());
        URL_SAFE_NO_PAD.encode(&mac[..MAC_LEN])
    }

    pub fn verify_archive(&self, digest_id: i64, key: &str) -> bool {
        constant_time_eq(key.as_bytes(), self.archive(digest_id).as_bytes())
    }

    pub fn verify(&self, token: &str, kind: TokenKind) -> Result<Token, TokenError> {
        if token.len() > 200 {
            return Err(TokenError::Malformed);
        }
        let (p, m) = token.split_once('.').ok_or(TokenError::Malformed)?;
        let payload = URL_SAFE_NO_PAD
            .decode(p)
            .map_err(|_| TokenError::Malformed)?;
        let given = URL_SAFE_NO_PAD
            .decode(m)
            .map_err(|_| TokenError::Malformed)?;
        let expected = self.mac(&payload);
        if given.len() != MAC_LEN || !constant_time_eq(&given, &expected[..MAC_LEN]) {
            return Err(TokenError::BadSignature);
        }
        let payload = std::str::from_utf8(&payload).map_err(|_| TokenError::Malformed)?;
        let mut it = payload.split(':');
        let found = match it.next() {
            Some("c") => TokenKind::Confirm,
            Some("u") => TokenKind::Unsubscribe,
            _ => return Err(TokenError::Malformed),
        };
        let subscriber_id = it
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or(TokenError::Malformed)?;
        let issued = it
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or(TokenError::Malformed)?;
        if found != kind {
            return Err(TokenError::WrongKind);
        }
        Ok(Token {
            kind,
            subscriber_id,
            issued,
        })
    }
}

/// Compares without an early exit, so timing does not reveal how much of a MAC matched.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper() {
        let t = Tokens::new("a-secret-of-at-least-thirty-two-bytes!!");
        let s = t.unsubscribe(42);
        assert_eq!(
            t.verify(&s, TokenKind::Unsubscribe).unwrap().subscriber_id,
            42
        );
        assert_eq!(t.verify(&s, TokenKind::Confirm), Err(TokenError::WrongKind));
        // Forge: same MAC on another subscriber.
        let (_, mac) = s.split_once('.').unwrap();
        let forged = format!("{}.{mac}", URL_SAFE_NO_PAD.encode("u:43:0"));
        assert_eq!(
            t.verify(&forged, TokenKind::Unsubscribe),
            Err(TokenError::BadSignature)
        );
        // Another key does not verify.
        let other = Tokens::new("another-secret-of-at-least-thirty-two!!");
        assert!(other.verify(&s, TokenKind::Unsubscribe).is_err());
        for junk in ["", ".", "abc", "a.b.c", &"x".repeat(500)] {
            assert!(t.verify(junk, TokenKind::Unsubscribe).is_err());
        }
    }

    #[test]
    fn confirm_carries_issue_time() {
        let t = Tokens::new("a-secret-of-at-least-thirty-two-bytes!!");
        let s = t.confirm(7, 1_700_000_000);
        let v = t.verify(&s, TokenKind::Confirm).unwrap();
        assert_eq!((v.subscriber_id, v.issued), (7, 1_700_000_000));
    }
}
