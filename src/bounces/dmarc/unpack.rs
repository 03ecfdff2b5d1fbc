//! A report's attachment as its XML: gzip, zip, or the XML itself, never more than
//! [`MAX_XML`] bytes once expanded, however small the attachment (a zip bomb is refused
//! after reading [`MAX_XML`] bytes of it, not after filling memory).
//!
//! The zip container is read here, over flate2, rather than with the `zip` crate: a DMARC
//! zip holds one XML file, which its local header introduces, and reading that header is
//! thirty lines; the crate would add a central-directory reader, encryption and a dozen
//! compression methods we would refuse anyway, and its own dependency tree.

use std::io::Read;

use flate2::read::{DeflateDecoder, GzDecoder};

use super::{
    limits::{MAX_ATTACHMENT, MAX_XML},
    refused::Refused,
};

/// How an attachment is packed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packing {
    Gzip,
    Zip,
    Plain,
}

impl Packing {
    /// From the first bytes (which win), else from the file name and the MIME type; `None`
    /// for a part that is no report.
    pub fn of(bytes: &[u8], name: &str, mime: &str) -> Option<Packing> {
        let (name, mime) = (name.to_ascii_lowercase(), mime.to_ascii_lowercase());
        let by_label = if name.ends_with(".zip") || mime.contains("zip") && !mime.contains("gzip") {
            Some(Packing::Zip)
        } else if name.ends_with(".gz") || name.ends_with(".gzip") || mime.contains("gzip") {
            Some(Packing::Gzip)
        } else if name.ends_with(".xml") || mime.ends_with("/xml") {
            Some(Packing::Plain)
        } else {
            None
        }?;
        Some(if bytes.starts_with(&[0x1f, 0x8b]) {
            Packing::Gzip
        } else if bytes.starts_with(b"PK\x03\x04") {
            Packing::Zip
        } else {
            by_label
        })
    }
}

/// The XML inside `bytes`.
pub fn unpack(bytes: &[u8], packing: Packing) -> Result<Vec<u8>, Refused> {
    if bytes.len() > MAX_ATTACHMENT {
        return Err(Refused::AttachmentTooLarge(bytes.len()));
    }
    match packing {
        Packing::Plain if bytes.len() > MAX_XML => Err(Refused::TooLarge),
        Packing::Plain => Ok(bytes.to_vec()),
        Packing::Gzip => bounded(GzDecoder::new(bytes)),
        Packing::Zip => zip_entry(bytes),
    }
}

/// Reads at most one byte past [`MAX_XML`]: that byte says the report is too large.
fn bounded(r: impl Read) -> Result<Vec<u8>, Refused> {
    let mut out = Vec::new();
    r.take(MAX_XML as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|_| Refused::Corrupt("the compressed data is damaged"))?;
    if out.len() > MAX_XML {
        return Err(Refused::TooLarge);
    }
    Ok(out)
}

const LOCAL_HEADER: &[u8] = b"PK\x03\x04";
/// General purpose flags: bit 0 encrypted, bit 3 sizes and CRC after the data.
const ENCRYPTED: u16 = 1;
const DATA_DESCRIPTOR: u16 = 1 << 3;

/// The first `.xml` entry of a zip (or its only entry), found by walking the local headers
/// (APPNOTE.TXT 4.3.7): stored or deflated, not encrypted, its CRC checked when the header
/// carries it.
fn zip_entry(bytes: &[u8]) -> Result<Vec<u8>, Refused> {
    let u16_at = |i: usize| {
        bytes
            .get(i..i + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let u32_at = |i: usize| {
        bytes
            .get(i..i + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let truncated = Refused::Corrupt("the zip archive is cut short");
    let mut at = 0usize;
    // Each step moves past a header, so this ends; a report zip has one entry.
    for _ in 0..16 {
        if bytes.get(at..at + 4) != Some(LOCAL_HEADER) {
            break;
        }
        let flags = u16_at(at + 6).ok_or(truncated.clone())?;
        let method = u16_at(at + 8).ok_or(truncated.clone())?;
        let crc = u32_at(at + 14).ok_or(truncated.clone())?;
        let size = u32_at(at + 18).ok_or(truncated.clone())? as usize;
        let name_len = u16_at(at + 26).ok_or(truncated.clone())? as usize;
        let extra_len = u16_at(at + 28).ok_or(truncated.clone())? as usize;
        let name = bytes
            .get(at + 30..at + 30 + name_len)
            .ok_or(truncated.clone())?;
        let data_at = at + 30 + name_len + extra_len;
        let data = bytes.get(data_at..).ok_or(truncated.clone())?;
        let sized = flags & DATA_DESCRIPTOR == 0 && size != u32::MAX as usize;
        let is_xml = name.to_ascii_lowercase().ends_with(b".xml");
        if !is_xml {
            if !sized {
                break;
            }
            at = data_at + size;
            continue;
        }
        if flags & ENCRYPTED != 0 {
            return Err(Refused::Corrupt("the zip entry is encrypted"));
        }
        let data = if sized {
            data.get(..size).ok_or(truncated.clone())?
        } else {
            data
        };
        let xml = match method {
            0 if sized && size > MAX_XML => return Err(Refused::TooLarge),
            0 if sized => data.to_vec(),
            // A deflate stream ends itself, so its size need not be known.
            8 => bounded(DeflateDecoder::new(data))?,
            _ => {
                return Err(Refused::Corrupt(
                    "the zip entry's compression is not deflate",
                ));
            }
        };
        if flags & DATA_DESCRIPTOR == 0 {
            let mut c = flate2::Crc::new();
            c.update(&xml);
            if c.sum() != crc {
                return Err(Refused::Corrupt("the zip entry's checksum does not match"));
            }
        }
        return Ok(xml);
    }
    Err(Refused::Corrupt("the zip archive holds no XML file"))
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    /// A one-entry zip, as the reports' senders make them.
    pub(crate) fn zip(name: &str, content: &[u8]) -> Vec<u8> {
        let mut enc =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(content).unwrap();
        let packed = enc.finish().unwrap();
        let mut crc = flate2::Crc::new();
        crc.update(content);
        let mut z = Vec::new();
        z.extend_from_slice(LOCAL_HEADER);
        for v in [20u16, 0, 8, 0, 0] {
            z.extend_from_slice(&v.to_le_bytes());
        }
        for v in [crc.sum(), packed.len() as u32, content.len() as u32] {
            z.extend_from_slice(&v.to_le_bytes());
        }
        z.extend_from_slice(&(name.len() as u16).to_le_bytes());
        z.extend_from_slice(&0u16.to_le_bytes());
        z.extend_from_slice(name.as_bytes());
        z.extend_from_slice(&packed);
        z
    }

    fn gzip(content: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(content).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn gzip_zip_and_plain_give_the_xml_back() {
        let xml = b"<feedback></feedback>".to_vec();
        assert_eq!(unpack(&gzip(&xml), Packing::Gzip).unwrap(), xml);
        assert_eq!(
            unpack(&zip("a!b!1!2.xml", &xml), Packing::Zip).unwrap(),
            xml
        );
        assert_eq!(unpack(&xml, Packing::Plain).unwrap(), xml);
    }

    #[test]
    fn the_first_bytes_win_over_the_label() {
        let xml = b"<feedback/>";
        assert_eq!(
            Packing::of(&gzip(xml), "report.zip", "application/zip"),
            Some(Packing::Gzip)
        );
        assert_eq!(
            Packing::of(&zip("r.xml", xml), "r.xml.gz", "application/octet-stream"),
            Some(Packing::Zip)
        );
        assert_eq!(Packing::of(xml, "photo.jpg", "image/jpeg"), None);
        assert_eq!(
            Packing::of(xml, "", "application/x-zip-compressed"),
            Some(Packing::Zip)
        );
    }

    #[test]
    fn a_bomb_is_refused_after_reading_the_limit() {
        let zeros = vec![0u8; MAX_XML + (1 << 20)];
        let bomb = zip("bomb.xml", &zeros);
        assert!(bomb.len() < 100_000, "{} bytes", bomb.len());
        assert_eq!(unpack(&bomb, Packing::Zip), Err(Refused::TooLarge));
        assert_eq!(unpack(&gzip(&zeros), Packing::Gzip), Err(Refused::TooLarge));
        // Just under the limit is fine.
        let fits = vec![b' '; MAX_XML];
        assert_eq!(unpack(&gzip(&fits), Packing::Gzip).unwrap().len(), MAX_XML);
    }

    #[test]
    fn damaged_archives_are_refused_not_read() {
        let xml = b"<feedback></feedback>";
        let z = zip("r.xml", xml);
        assert!(matches!(
            unpack(&z[..40], Packing::Zip),
            Err(Refused::Corrupt(_))
        ));
        let mut bad_crc = z.clone();
        bad_crc[14] ^= 0xff;
        assert!(matches!(
            unpack(&bad_crc, Packing::Zip),
            Err(Refused::Corrupt(_))
        ));
        let g = gzip(xml);
        assert!(matches!(
            unpack(&g[..g.len() - 9], Packing::Gzip),
            Err(Refused::Corrupt(_))
        ));
        assert!(matches!(
            unpack(&zip("notes.txt", xml), Packing::Zip),
            Err(Refused::Corrupt(_))
        ));
        let big = vec![0u8; MAX_ATTACHMENT + 1];
        assert!(matches!(
            unpack(&big, Packing::Gzip),
            Err(Refused::AttachmentTooLarge(_))
        ));
    }
}
