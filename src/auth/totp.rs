//! Time-based one-time codes (RFC 6238: HMAC-SHA1, 30-second steps, 6 digits), as
//! authenticator apps make them.
//!
//! The codes and the base32 secrets are `totp-rs`'s (its comparison runs in constant time).
//! What stays ours is policy: the window (the step before and after the current one, as
//! clocks drift), which step a code is taken for (the caller records it, so a code opens
//! nothing twice), the `otpauth://` address and its QR code for the account page.
//!
//! The QR code is drawn as SVG from `qrcodegen` (the encoder totp-rs's `qr` feature uses),
//! not through that feature: it draws PNGs through the `image` crate, some 200,000 lines of
//! dependencies to compile for one picture.

use base64::{Engine, engine::general_purpose::STANDARD};
use qrcodegen::{QrCode, QrCodeEcc};
use rand::RngCore;
use totp_rs::{Algorithm, Builder, Secret, Totp};

const STEP: u64 = 30;

/// A new secret: 160 random bits in base32, as apps take it typed or scanned.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 20];
    rand::rng().fill_bytes(&mut bytes);
    Secret::from(bytes).to_base32()
}

/// The generator for `secret` (base32; case, spaces, dashes and padding as people type
/// them), checking one step only: the window is [`verify_step`]'s.
fn totp(secret: &str) -> Option<Totp> {
    let clean: String = secret
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '='))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let secret = Secret::try_from_base32(clean).ok()?;
    // `build` would refuse a secret under 128 bits; every one Nashra makes has 160, but one
    // an operator set by hand before must still sign in. The other values are the RFC's.
    Some(
        Builder::new()
            .with_algorithm(Algorithm::SHA1)
            .with_digits(6)
            .with_skew(0)
            .with_step_duration(STEP)
            .with_secret(secret)
            .build_noncompliant(),
    )
}

/// The code for the 30-second step that holds `unix_secs`.
pub fn code_at(secret: &str, unix_secs: i64) -> Option<String> {
    let t = u64::try_from(unix_secs).ok()?;
    Some(totp(secret)?.generate(t).to_string())
}

/// Whether `code` is the current code, or the one just before or after (clocks drift).
pub fn verify(secret: &str, code: &str, unix_secs: i64) -> bool {
    verify_step(secret, code, unix_secs).is_some()
}

/// The step (`unix_secs / 30`) whose code `code` is, among the current one and its
/// neighbours; the caller remembers it so the code is not taken twice.
///
/// The latest matching step is the one returned: should two neighbouring steps share a code,
/// taking it uses up both, so it cannot be replayed in the later one.
pub fn verify_step(secret: &str, code: &str, unix_secs: i64) -> Option<i64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    let totp = totp(secret)?;
    let now = u64::try_from(unix_secs).ok()? / STEP;
    [now + 1, now, now.saturating_sub(1)]
        .into_iter()
        .find_map(|step| totp.check(&code, step * STEP))
        .and_then(|step| i64::try_from(step).ok())
}

/// Whether `s` has the shape of a code (six digits), not of a password (twelve
/// characters at least): a form may take either.
pub fn looks_like_code(s: &str) -> bool {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    s.len() == 6 && s.bytes().all(|b| b.is_ascii_digit())
}

/// The `otpauth://` address an authenticator app takes.
///
/// Written here rather than by totp-rs's `otpauth` feature, which refuses an issuer with a
/// colon (a newsletter's name may have one) and leaves out the parameters that are at their
/// defaults, which some apps then guess.
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

/// `uri` as a QR code the phone's camera reads: an SVG `data:` address for an `<img>`
/// (the console's pages allow `data:` images). `None` if the address is too long for one.
pub fn qr_data_url(uri: &str) -> Option<String> {
    let qr = QrCode::encode_text(uri, QrCodeEcc::Medium).ok()?;
    // Four modules of white around the code: scanners need the quiet zone.
    let (size, quiet) = (qr.size(), 4);
    // One rectangle per run of dark modules in a row keeps the picture a few kilobytes.
    let mut path = String::new();
    for y in 0..size {
        let mut x = 0;
        while x < size {
            let run = (x..size).take_while(|&x| qr.get_module(x, y)).count() as i32;
            if run > 0 {
                path.push_str(&format!("M{},{}h{run}v1h-{run}z", x + quiet, y + quiet));
            }
            x += run.max(1);
        }
    }
    let side = size + 2 * quiet;
    let svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {side} {side}\" \
         shape-rendering=\"crispEdges\"><rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>\
         <path d=\"{path}\" fill=\"#000\"/></svg>"
    );
    Some(format!(
        "data:image/svg+xml;base64,{}",
        STANDARD.encode(svg)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_6238_vectors() {
        // RFC 6238 appendix B, SHA-1 key "12345678901234567890", last six digits.
        let secret = Secret::from(*b"12345678901234567890").to_base32();
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
        assert_eq!(
            code_at("gezd-gnbv gy3tqojqgezdgnbvgy3tqojq==", 59).unwrap(),
            "287082"
        );
        assert!(verify(&secret, "081804", 1111111109 + 30));
        assert!(verify(&secret, "081804", 1111111109 - 30));
        assert!(verify(&secret, "081 804", 1111111109));
        assert!(!verify(&secret, "081804", 1111111109 + 90));
        assert!(!verify(&secret, "", 59));
        assert!(!verify(&secret, "+81804", 1111111109));
        assert!(!verify("not base32!", "287082", 59));
        assert_eq!(
            verify_step(&secret, "081804", 1111111109 + 30),
            Some(1111111109 / 30)
        );
        assert!(looks_like_code("081 804") && !looks_like_code("a long password"));
        let fresh = new_secret();
        assert_eq!(fresh.len(), 32);
        assert_eq!(
            Secret::try_from_base32(&fresh).unwrap().as_bytes().len(),
            20
        );
        // A secret set by hand before, shorter than the RFC asks, still gives codes.
        assert!(code_at("JBSWY3DPEHPK3PXP", 59).is_some());
    }

    #[test]
    fn the_address_and_its_qr_code() {
        let u = uri("نشرة: الصباح", "a@example.org", "JBSWY3DPEHPK3PXP");
        assert!(u.starts_with("otpauth://totp/%D9%86"), "{u}");
        assert!(u.ends_with("&algorithm=SHA1&digits=6&period=30"), "{u}");
        let qr = qr_data_url(&u).unwrap();
        let svg = STANDARD
            .decode(qr.strip_prefix("data:image/svg+xml;base64,").unwrap())
            .unwrap();
        let svg = String::from_utf8(svg).unwrap();
        assert!(
            svg.starts_with("<svg ") && svg.contains("M4,4h7v1h-7z"),
            "{svg}"
        );
        assert!(qr_data_url(&"x".repeat(5000)).is_none());
    }
}
