//! Subscribers as CSV: the import reader (header required, `email` and an optional `name`
//! column, any order) and the export writer.
//!
//! The `csv` crate does the format (quoted fields, commas and newlines inside quotes, a
//! byte-order mark); this module does what is ours. Export neutralises spreadsheet formulas
//! by putting `'` before a field that starts with `= + - @`, and import takes that `'` off
//! again, so an export read back in is the same list (`=1+1@example.com` stays itself).

use std::io::{Read, Write};

use anyhow::Context;

use crate::{
    domain::{EmailError, NameError, SubscriberEmail, SubscriberName},
    store::SubscriberRow,
};

/// An address to import and the name that came with it.
pub type ImportRow = (SubscriberEmail, SubscriberName);

/// Why a row was not imported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RowError {
    #[error("not valid UTF-8")]
    NotUtf8,
    #[error("{0}")]
    Email(#[from] EmailError),
    #[error("name: {0}")]
    Name(#[from] NameError),
}

impl RowError {
    /// For the console's report, in Arabic.
    pub fn arabic(&self) -> String {
        match self {
            RowError::NotUtf8 => "السطر ليس نصاً بترميز UTF-8.".into(),
            RowError::Email(e) => e.arabic().into(),
            RowError::Name(e) => format!("الاسم: {}", e.arabic()),
        }
    }
}

pub struct CsvImport<R> {
    reader: csv::Reader<R>,
    record: csv::ByteRecord,
    email: usize,
    name: Option<usize>,
}

impl<R: Read> CsvImport<R> {
    pub fn new(input: R) -> anyhow::Result<CsvImport<R>> {
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(input);
        let header = reader
            .byte_headers()
            .context("cannot read the CSV header")?;
        let cols: Vec<String> = header
            .iter()
            .map(|c| {
                String::from_utf8_lossy(c)
                    .trim_start_matches('\u{feff}')
                    .trim()
                    .to_lowercase()
            })
            .collect();
        let email = cols
            .iter()
            .position(|c| c == "email")
            .context("CSV header must have an `email` column")?;
        Ok(CsvImport {
            reader,
            record: csv::ByteRecord::new(),
            email,
            name: cols.iter().position(|c| c == "name"),
        })
    }

    /// The next row with its line number, or `None` at the end. A row that cannot be read
    /// as CSV at all ends the import with an error naming its line.
    pub fn next_row(&mut self) -> anyhow::Result<Option<(u64, Result<ImportRow, RowError>)>> {
        loop {
            if !self
                .reader
                .read_byte_record(&mut self.record)
                .context("the CSV is malformed")?
            {
                return Ok(None);
            }
            let line = self.record.position().map_or(0, |p| p.line());
            if self.record.iter().all(|f| f.is_empty()) {
                continue;
            }
            return Ok(Some((line, self.parse())));
        }
    }

    fn parse(&self) -> Result<ImportRow, RowError> {
        let field = |i: usize| -> Result<String, RowError> {
            let raw = self.record.get(i).unwrap_or_default();
            let s = std::str::from_utf8(raw).map_err(|_| RowError::NotUtf8)?;
            Ok(unescape(s).to_owned())
        };
        let email = SubscriberEmail::parse(&field(self.email)?)?;
        let name = match self.name {
            Some(i) => SubscriberName::parse(&field(i)?)?,
            None => SubscriberName::default(),
        };
        Ok((email, name))
    }
}

/// The header of an export.
pub const EXPORT_HEADER: [&str; 6] = [
    "email",
    "name",
    "status",
    "source",
    "created_at",
    "confirmed_at",
];

pub fn export_writer<W: Write>(out: W) -> anyhow::Result<csv::Writer<W>> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record(EXPORT_HEADER)?;
    Ok(w)
}

pub fn export_row<W: Write>(w: &mut csv::Writer<W>, s: &SubscriberRow) -> anyhow::Result<()> {
    w.write_record([
        escape(&s.email).as_ref(),
        escape(&s.name).as_ref(),
        s.status.as_str(),
        escape(&s.source).as_ref(),
        &s.created_at.to_string(),
        &s.confirmed_at.map(|t| t.to_string()).unwrap_or_default(),
    ])?;
    Ok(())
}

/// A field a spreadsheet would run as a formula gets a `'` in front.
fn escape(s: &str) -> std::borrow::Cow<'_, str> {
    if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}").into()
    } else {
        s.into()
    }
}

/// The export's `'` taken off again.
fn unescape(s: &str) -> &str {
    match s.strip_prefix('\'') {
        Some(rest) if rest.starts_with(['=', '+', '-', '@']) => rest,
        _ => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(text: &str) -> (Vec<ImportRow>, Vec<(u64, String)>) {
        let mut r = CsvImport::new(text.as_bytes()).unwrap();
        let (mut good, mut bad) = (vec![], vec![]);
        while let Some((line, row)) = r.next_row().unwrap() {
            match row {
                Ok(x) => good.push(x),
                Err(why) => bad.push((line, why.to_string())),
            }
        }
        (good, bad)
    }

    #[test]
    fn quotes_newlines_bom_and_bad_rows() {
        let (rows, bad) = read_all(
            "\u{feff}name,email\n\"Smith, Sara\",a@example.com\nx,not-an-email\n\n\"Ali\nAhmad\",b@example.org\n,c@example.org\nSara 2,d@example.org\n",
        );
        assert_eq!(rows.len(), 3, "{bad:?}");
        assert_eq!(rows[0].1.as_str(), "Smith, Sara");
        assert_eq!(rows[1].1.as_str(), "Ali Ahmad");
        assert_eq!(rows[1].0.as_str(), "b@example.org");
        assert_eq!(bad.len(), 2);
        assert_eq!(bad[0], (3, "not a plain address".into()));
        assert!(bad[1].1.starts_with("name:"), "{bad:?}");
    }

    #[test]
    fn an_export_reads_back_as_the_same_list() {
        let rows: Vec<SubscriberRow> = ["=1+1@example.com", "-x@example.com", "'q@example.com"]
            .iter()
            .enumerate()
            .map(|(i, e)| SubscriberRow {
                id: i as i64,
                email: e.to_string(),
                name: String::new(),
                status: crate::store::SubscriberStatus::Confirmed,
                source: "=HYPERLINK(\"x\")".into(),
                created_at: 1,
                consented_at: 1,
                confirmed_at: Some(1),
                unsubscribed_at: None,
                bounces: 0,
            })
            .collect();
        let mut w = export_writer(Vec::new()).unwrap();
        for r in &rows {
            export_row(&mut w, r).unwrap();
        }
        let out = String::from_utf8(w.into_inner().unwrap()).unwrap();
        assert!(
            out.contains("'=1+1@example.com"),
            "formula neutralised: {out}"
        );
        assert!(out.contains("'=HYPERLINK"), "{out}");
        let (back, bad) = read_all(&out);
        assert!(bad.is_empty(), "{bad:?}");
        let emails: Vec<&str> = back.iter().map(|(e, _)| e.as_str()).collect();
        assert_eq!(
            emails,
            ["=1+1@example.com", "-x@example.com", "'q@example.com"]
        );
    }
}
