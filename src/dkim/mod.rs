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
//!
//! - `keys` reads a PEM key, makes new ones (`nashra dkim keygen`) and writes the TXT record;
//! - `canon` reduces headers and body to the bytes a signature covers;
//! - `signer` holds the configured keys and puts the `DKIM-Signature` headers in front.

mod canon;
mod keys;
mod signer;

pub use keys::{Algorithm, Key, generate};
pub use signer::{SIGNED_HEADERS, Signer};
