//! Tag lists (`v=DKIM1; k=rsa; p=…`, RFC 6376 §3.2), as DKIM key records and DMARC records
//! are written: `;`-separated `name=value` pairs, whitespace around them ignored.

/// The tags in order, names lower-cased; `None` when a tag is not `name=value`, a name is
/// not a tag name, or one appears twice (both make the record invalid).
pub fn parse(record: &str) -> Option<Vec<(String, String)>> {
    let mut tags: Vec<(String, String)> = Vec::new();
    for part in record.split(';') {
        let part = part.trim();
        if part.is_empty() {
            continue; // a trailing `;` is allowed
        }
        let (name, value) = part.split_once('=')?;
        let name = name.trim().to_ascii_lowercase();
        let valid = name.starts_with(|c: char| c.is_ascii_alphabetic())
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !valid || tags.iter().any(|(n, _)| *n == name) {
            return None;
        }
        tags.push((name, value.trim().to_owned()));
    }
    Some(tags)
}

/// The value of `name` among `tags`.
pub fn get<'a>(tags: &'a [(String, String)], name: &str) -> Option<&'a str> {
    tags.iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_read_in_order_and_a_repeated_one_is_refused() {
        let t = parse(" v=DKIM1 ; K=rsa;p=MIIB AQAB ;").unwrap();
        assert_eq!(t[0], ("v".into(), "DKIM1".into()));
        assert_eq!(get(&t, "k"), Some("rsa"));
        assert_eq!(get(&t, "p"), Some("MIIB AQAB"));
        assert_eq!(get(&t, "t"), None);
        assert!(parse("v=DMARC1; p=none; p=reject").is_none());
        assert!(parse("v=DMARC1; nonsense").is_none());
        assert!(parse("=x").is_none());
    }
}
