//! Relaxed canonicalisation (RFC 6376 3.4.2 and 3.4.4): the bytes a DKIM signature covers.
//!
//! Kept apart from the signer because it is the part a verifier must agree with to the byte,
//! and the part with its own fast path: our own bodies are almost always canonical already,
//! so the body is checked in one pass and copied only when something would change.

use std::borrow::Cow;

/// Header block (ending with its last CRLF) and body.
pub(super) fn split(message: &[u8]) -> (&[u8], &[u8]) {
    match memchr::memmem::find(message, b"\r\n\r\n") {
        Some(i) => (&message[..i + 2], &message[i + 4..]),
        None => (message, b""),
    }
}

/// Header fields with their folding, without the final CRLF.
pub(super) fn parse_fields(block: &[u8]) -> Vec<&[u8]> {
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

pub(super) fn field_name(f: &[u8]) -> &[u8] {
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
pub(super) fn relaxed_header(out: &mut Vec<u8>, field: &[u8]) {
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
pub(super) fn relaxed_body(body: &[u8]) -> Cow<'_, [u8]> {
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
}
