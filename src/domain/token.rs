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
/// MAC bytes in a return path: a forged bounce must guess 48 bits per delivery.
const VERP_MAC_LEN: usize = 6;

/// What a bounce address names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerpTarget {
    /// A digest's ledger row.
    Delivery(i64),
    /// A reader's confirmation email.
    Subscriber(i64),
}

impl VerpTarget {
    fn payload(self) -> String {
        match self {
            VerpTarget::Delivery(id) => format!("d{id}"),
            VerpTarget::Subscriber(id) => format!("s{id}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// Double opt-in link; `issued` is the sign-up time it belongs to.
    Confirm,
    /// One-click unsubscribe; never expires, since old digests keep their links.
    Unsubscribe,
    /// A reader's preferences page; never expires either.
    Preferences,
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

    fn hmac(&self, payload: &[u8]) -> Hmac<Sha256> {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(payload);
        mac
    }

    fn mac(&self, payload: &[u8]) -> [u8; 32] {
        self.hmac(payload).finalize().into_bytes().into()
    }

    /// Whether `given` is the (truncated) MAC of `payload`, compared in constant time by
    /// the hmac crate.
    fn verify_mac(&self, payload: &[u8], given: &[u8]) -> bool {
        given.len() == MAC_LEN && self.hmac(payload).verify_truncated_left(given).is_ok()
    }

    pub fn sign(&self, t: Token) -> String {
        let k = match t.kind {
            TokenKind::Confirm => 'c',
            TokenKind::Unsubscribe => 'u',
            TokenKind::Preferences => 'p',
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

    pub fn preferences(&self, subscriber_id: i64) -> String {
        self.sign(Token {
            kind: TokenKind::Preferences,
            subscriber_id,
            issued: 0,
        })
    }

    /// The part of a click link (`/r/<key>-<article>`) that names the message: its ledger row
    /// and 48 bits of MAC, so counts cannot be forged for messages nobody received. The
    /// article is not signed: any article of that message's digest is a fair target.
    pub fn click_key(&self, delivery_id: i64) -> String {
        let hex = self.short_mac(&format!("r:{delivery_id}"));
        format!("{delivery_id}-{hex}")
    }

    /// 48 bits of MAC over `payload`, in lower-case hex (for addresses and links).
    fn short_mac(&self, payload: &str) -> String {
        hex::encode(&self.mac(payload.as_bytes())[..VERP_MAC_LEN])
    }

    /// Whether `hex` is [`Tokens::short_mac`] of `payload`, compared in constant time.
    fn verify_short_mac(&self, payload: &str, hex: &str) -> bool {
        let mut given = [0u8; VERP_MAC_LEN];
        // `decode_to_slice` refuses any length but exactly 2 × VERP_MAC_LEN digits.
        hex::decode_to_slice(hex, &mut given).is_ok()
            && self
                .hmac(payload.as_bytes())
                .verify_truncated_left(&given)
                .is_ok()
    }

    /// The (delivery, article) a click link names, if its key is ours.
    pub fn verify_click(&self, token: &str) -> Option<(i64, i64)> {
        if token.len() > 60 {
            return None;
        }
        let mut it = token.split('-');
        let (d, hex, a) = (it.next()?, it.next()?, it.next()?);
        if it.next().is_some() {
            return None;
        }
        let delivery: i64 = d.parse().ok().filter(|n| *n > 0)?;
        let article: i64 = a.parse().ok().filter(|n| *n > 0)?;
        self.verify_short_mac(&format!("r:{delivery}"), hex)
            .then_some((delivery, article))
    }

    /// A keyed hash of (message, article) that says "already counted" without naming either.
    pub fn click_mark(&self, delivery_id: i64, article_id: i64) -> String {
        let mac = self.mac(format!("m:{delivery_id}:{article_id}").as_bytes());
        URL_SAFE_NO_PAD.encode(&mac[..MAC_LEN])
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
        URL_SAFE_NO_PAD
            .decode(key)
            .is_ok_and(|given| self.verify_mac(format!("a:{digest_id}").as_bytes(), &given))
    }

    /// The tag a per-message return path carries (`bounces+<tag>@domain`): which delivery
    /// (`d<id>`) or which reader's transactional mail (`s<id>`) a bounce is about, with 48 bits
    /// of MAC: lower-case hex, since some servers fold the case of local parts.
    pub fn verp_tag(&self, target: VerpTarget) -> String {
        let payload = target.payload();
        let hex = self.short_mac(&format!("v:{payload}"));
        format!("{payload}-{hex}")
    }

    /// The target a VERP tag names, if we made it.
    pub fn verify_verp_tag(&self, tag: &str) -> Option<VerpTarget> {
        let tag = tag.to_ascii_lowercase();
        let (payload, hex) = tag.split_once('-')?;
        if payload.len() > 21 {
            return None;
        }
        let id: i64 = payload.get(1..)?.parse().ok().filter(|n| *n > 0)?;
        let target = match payload.as_bytes()[0] {
            b'd' => VerpTarget::Delivery(id),
            b's' => VerpTarget::Subscriber(id),
            _ => return None,
        };
        self.verify_short_mac(&format!("v:{payload}"), hex)
            .then_some(target)
    }

    /// A sign-up form's stamp: when it was served, signed. A form posted back sooner than a
    /// person could fill it in was filled by a program.
    pub fn form_stamp(&self, now_ms: i64) -> String {
        let payload = format!("f:{now_ms}");
        let mac = self.mac(payload.as_bytes());
        format!("{now_ms}.{}", URL_SAFE_NO_PAD.encode(&mac[..MAC_LEN]))
    }

    /// When the form carrying `stamp` was served, if we signed it.
    pub fn verify_form_stamp(&self, stamp: &str) -> Option<i64> {
        let (at, m) = stamp.split_once('.')?;
        let given = URL_SAFE_NO_PAD.decode(m).ok()?;
        let at_ms: i64 = at.parse().ok()?;
        self.verify_mac(format!("f:{at_ms}").as_bytes(), &given)
            .then_some(at_ms)
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
        if !self.verify_mac(&payload, &given) {
            return Err(TokenError::BadSignature);
        }
        let payload = std::str::from_utf8(&payload).map_err(|_| TokenError::Malformed)?;
        let mut it = payload.split(':');
        let found = match it.next() {
            Some("c") => TokenKind::Confirm,
            Some("u") => TokenKind::Unsubscribe,
            Some("p") => TokenKind::Preferences,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn click_links_name_their_message_only_as_issued() {
        let t = Tokens::new("a-secret-of-at-least-thirty-two-bytes!!");
        let key = t.click_key(77);
        assert_eq!(t.verify_click(&format!("{key}-5")), Some((77, 5)));
        let (_, mac) = key.split_once('-').unwrap();
        assert_eq!(
            t.verify_click(&format!("78-{mac}-5")),
            None,
            "another message"
        );
        for junk in [
            "",
            "77",
            key.as_str(),
            &format!("{key}-0"),
            &format!("{key}-5-6"),
            &format!("{key}-x"),
        ] {
            assert_eq!(t.verify_click(junk), None, "{junk}");
        }
        assert_ne!(t.click_mark(77, 5), t.click_mark(77, 6));
        let p = t.preferences(9);
        assert_eq!(
            t.verify(&p, TokenKind::Preferences).unwrap().subscriber_id,
            9
        );
        assert_eq!(
            t.verify(&p, TokenKind::Unsubscribe),
            Err(TokenError::WrongKind)
        );
    }

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
    fn archive_keys_and_form_stamps_verify_only_as_issued() {
        let t = Tokens::new("a-secret-of-at-least-thirty-two-bytes!!");
        let key = t.archive(9);
        assert!(t.verify_archive(9, &key));
        assert!(!t.verify_archive(10, &key));
        assert!(!t.verify_archive(9, "AAAAAAAAAAAAAAAAAAAAAA"));
        assert!(!t.verify_archive(9, ""));
        let stamp = t.form_stamp(1_700_000_000_123);
        assert_eq!(t.verify_form_stamp(&stamp), Some(1_700_000_000_123));
        let (_, mac) = stamp.split_once('.').unwrap();
        assert_eq!(
            t.verify_form_stamp(&format!("1.{mac}")),
            None,
            "another time, same MAC"
        );
        for junk in ["", ".", "1.", "x.y", "99999999999999999999.AAAA"] {
            assert_eq!(t.verify_form_stamp(junk), None);
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
